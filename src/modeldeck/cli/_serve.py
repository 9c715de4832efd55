"""``modeldeck serve``: settings from the environment, overridden by flags, validated before loading."""

from __future__ import annotations

import argparse

from ..config import Settings

__all__ = ["run_serve"]


def run_serve(args: argparse.Namespace) -> int:
    from ..serving import serve

    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else None
    settings = Settings.from_env(
        models=models,
        host=args.host,
        port=args.port,
        max_batch_size=1 if args.no_batching else args.max_batch_size,
        max_wait_ms=0.0 if args.no_batching else args.max_wait_ms,
        allow_failed_models=True if args.allow_failed_models else None,
        api_keys=",".join(args.api_keys) if args.api_keys else None,
        api_key_file=args.api_key_file,
        max_queue_wait_ms=args.max_queue_wait_ms,
        onnx_threads=args.onnx_threads,
        onnx_graph_level=args.onnx_graph_level,
        prefer_variant=args.prefer_variant,
    )
    serve(settings, log_level=args.log_level)
    return 0
