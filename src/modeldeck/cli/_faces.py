"""``modeldeck faces``: enrol people into a gallery, identify and verify faces, list and remove people."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import EmptyInputError, GalleryNotFoundError, InputError, InputTypeError

__all__ = ["add_parser", "run_faces"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def add_parser(commands: Any) -> None:
    """Add the ``faces`` command; its work lives in a function named by ``handler``."""
    faces = commands.add_parser(
        "faces",
        help="face galleries: enroll people, identify and verify faces",
        description="Identify people against a gallery (one SQLite file), or verify that two photos match.",
    )
    verbs = faces.add_subparsers(dest="verb", metavar="VERB", required=True)
    model_help = "face-embed model (default: the gallery's own model, or the default face-embed for a new gallery)"

    enroll = verbs.add_parser(
        "enroll",
        help="add people from a folder holding one subfolder of photos per person",
        description="FOLDER holds one subfolder per person, named after them, with their photos; with --name, "
        "FOLDER (or the files given) are all photos of that one person. The gallery file is created if needed.",
    )
    enroll.add_argument("gallery", help="gallery file (SQLite), created if missing")
    enroll.add_argument(
        "folder", nargs="+", metavar="FOLDER", help="folder of people folders (or, with --name, photos)"
    )
    enroll.add_argument("--name", help="enroll every photo given as this one person")
    enroll.add_argument("--largest", action="store_true", help="use the largest face of a photo with several")
    enroll.add_argument("--model", help=model_help)
    enroll.add_argument("--json", action="store_true", help="print the enrolment reports as JSON")
    enroll.add_argument("--quiet", action="store_true", help="no progress bar")

    identify = verbs.add_parser("identify", help="name the faces in a photo from a gallery")
    identify.add_argument("gallery", help="gallery file (must exist)")
    identify.add_argument("image", help="photo to identify")
    identify.add_argument("--top-k", type=int, default=5, help="candidates per face (default 5)")
    identify.add_argument("--threshold", type=float, help="largest distance that counts as a match (default: model's)")
    identify.add_argument("--largest", action="store_true", help="identify only the largest face")
    identify.add_argument("--model", help=model_help)
    identify.add_argument("--json", action="store_true", help="print the identification as JSON")

    verify = verbs.add_parser("verify", help="tell whether two photos show the same person")
    verify.add_argument("image_a")
    verify.add_argument("image_b")
    verify.add_argument("--model", help="face-verify model (default: the task's default)")
    verify.add_argument(
        "--largest",
        action="store_true",
        help="in a photo with several confident faces, use the largest (weak detections are ignored anyway)",
    )
    verify.add_argument(
        "--match-threshold", type=float, metavar="DISTANCE", help="largest distance that matches (default: model's)"
    )
    verify.add_argument("--json", action="store_true", help="print the verification as JSON")

    listing = verbs.add_parser("list", help="the people in a gallery and how many photos each has")
    listing.add_argument("gallery", help="gallery file (must exist)")
    listing.add_argument("--images", action="store_true", help="also list each stored image's id and source")
    listing.add_argument("--json", action="store_true", help="print as JSON")

    remove = verbs.add_parser("remove", help="remove a person (every photo of theirs) or one stored image")
    remove.add_argument("gallery", help="gallery file (must exist)")
    remove.add_argument("name", nargs="?", help="the person to remove")
    remove.add_argument("--image", type=int, metavar="ID", help="remove only this stored image (see list --images)")

    faces.set_defaults(handler="modeldeck.cli._faces:run_faces")


def run_faces(args: argparse.Namespace) -> int:
    verb = args.verb
    if verb == "enroll":
        return _enroll(args)
    if verb == "identify":
        return _identify(args)
    if verb == "verify":
        return _verify(args)
    if verb == "list":
        return _list(args)
    return _remove(args)


def _open(path: str, model: str | None, *, create: bool) -> Any:
    from ..gallery import Gallery

    if not create and not Path(path).is_file():
        raise GalleryNotFoundError(
            f"no face gallery at {path!r}", hint="check the path, or create one: modeldeck faces enroll GALLERY FOLDER"
        )
    return Gallery(path, model, create=create)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _plan(args: argparse.Namespace) -> list[tuple[str, list[Path]]]:
    """``[(person, photos)]`` from the command line: one subfolder per person, or --name and its photos."""
    paths = [Path(p) for p in args.folder]
    for path in paths:
        if not path.exists():
            raise InputError(f"no such file or folder: {str(path)!r}", hint="check the path")
    if args.name:
        photos: list[Path] = []
        for path in paths:
            photos.extend(_images_in(path) if path.is_dir() else [path])
        plan = [(args.name, photos)]
    else:
        if len(paths) != 1 or not paths[0].is_dir():
            raise InputTypeError(
                "enroll takes one folder holding one subfolder of photos per person",
                hint="modeldeck faces enroll team.db ./people/  (or --name NAME photo.jpg ...)",
            )
        plan = [(sub.name, _images_in(sub)) for sub in sorted(paths[0].iterdir()) if sub.is_dir()]
        loose = _images_in(paths[0])
        if loose:
            print(
                f"note: {len(loose)} photo(s) directly in {str(paths[0])!r} were ignored: put each person's photos "
                "in a subfolder named after them, or use --name",
                file=sys.stderr,
            )
    plan = [(name, photos) for name, photos in plan if photos]
    if not plan:
        raise EmptyInputError(
            f"no photos found under {', '.join(map(str, paths))!r}",
            hint=f"photos need one of the suffixes {', '.join(sorted(IMAGE_SUFFIXES))}",
        )
    return plan


def _enroll(args: argparse.Namespace) -> int:
    from ..errors import ModelDeckError

    plan = _plan(args)
    total = sum(len(photos) for _, photos in plan)
    gallery = _open(args.gallery, args.model, create=True)
    reports: list[dict[str, Any]] = []
    failures: list[tuple[str, ModelDeckError]] = []
    with gallery, _Bar(not args.quiet, total) as advance:
        for name, photos in plan:
            try:
                report = gallery.enroll(name, photos, largest=args.largest, on_image=lambda _s, _e: advance())
            except InputError as exc:  # no photo of this person worked: report it, go on with the others
                failures.append((name, exc))
                continue
            reports.append(report.to_dict())
        people = len(gallery)
    if args.json:
        out = {
            "gallery": args.gallery,
            "people": people,
            "enrolled": reports,
            "failed": [{"name": n, "error": e.to_dict()} for n, e in failures],
        }
        print(json.dumps(out, indent=2))
    else:
        _print_enroll_summary(args.gallery, reports, failures, people)
    return 0 if reports else 2


def _print_enroll_summary(
    path: str, reports: list[dict[str, Any]], failures: list[tuple[str, Any]], people: int
) -> None:
    added = sum(len(r["added"]) for r in reports)
    skipped = [(r["name"], s) for r in reports for s in r["skipped"]]
    print(f"{path}: enrolled {added} photo(s) of {len(reports)} person(s); the gallery holds {people} people")
    if skipped:
        print(f"skipped {len(skipped)} photo(s):")
        for name, item in skipped:
            print(f"  {name}: {item['source']}: [{item['code']}] {item['message']}")
    for name, error in failures:
        print(f"not enrolled: {name}: {error}")


class _Bar:
    """A rich progress bar on stderr advanced once per photo; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._progress: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]enrolling photos"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task("enroll", total=total)

    def __enter__(self) -> Any:
        if self._progress is not None:
            self._progress.start()
        return self.advance

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _identify(args: argparse.Namespace) -> int:
    gallery = _open(args.gallery, args.model, create=False)
    with gallery:
        result = gallery.identify(Path(args.image), top_k=args.top_k, threshold=args.threshold, largest=args.largest)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"{len(result.faces)} face(s) in {args.image}; threshold {result.threshold:g} ({result.metric})")
    for i, face in enumerate(result.faces, 1):
        box = ", ".join(f"{v:.0f}" for v in face.box)
        verdict = face.name if face.name is not None else "unknown"
        distance = "" if face.distance is None else f"  distance {face.distance:.4f}"
        print(f"face {i} [{box}]: {verdict}{distance}")
        for rank, cand in enumerate(face.candidates, 1):
            mark = "*" if cand.match else " "
            print(f"  {rank}. {mark} {cand.name}  {cand.distance:.4f}  (image {cand.image_id})")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .. import load

    task = load("face-verify", model=args.model) if args.model else load("face-verify")
    options = {"largest": args.largest, "match_threshold": args.match_threshold}
    # Path: read as a file, never as base64
    result = task(Path(args.image_a), Path(args.image_b), **{k: v for k, v in options.items() if v is not None})
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    verdict = "same person" if result.match else "different people"
    print(
        f"{verdict}: distance {result.distance:.4f} (threshold {result.threshold:g}, {result.metric}), "
        f"confidence {result.confidence:.3f}, model {result.model}"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    gallery = _open(args.gallery, None, create=False)
    with gallery:
        people = gallery.people()
        images = {p.name: gallery.images(p.name) for p in people} if args.images else {}
        header = {"gallery": args.gallery, "model": gallery.model_id, "metric": gallery.metric}
    if args.json:
        rows = []
        for person in people:
            row = person.to_dict()
            if args.images:
                row["image_ids"] = [{"image_id": i.image_id, "source": i.source} for i in images[person.name]]
            rows.append(row)
        print(json.dumps({**header, "people": rows}, indent=2))
        return 0
    print(f"{args.gallery}: {len(people)} people, model {header['model']}")
    for person in people:
        print(f"  {person.name}  ({person.images} image{'s' if person.images != 1 else ''})")
        for image in images.get(person.name, []):
            print(f"      {image.image_id}: {image.source}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    if (args.name is None) == (args.image is None):
        raise InputError("remove takes a person's NAME or --image ID (one of them)", hint="faces remove team.db alice")
    gallery = _open(args.gallery, None, create=False)
    with gallery:
        if args.image is not None:
            name = gallery.remove_image(args.image)
            print(f"removed image {args.image} of {name}")
        else:
            count = gallery.remove_person(args.name)
            print(f"removed {args.name} ({count} image{'s' if count != 1 else ''})")
    return 0
