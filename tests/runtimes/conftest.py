"""Runtime tests reuse the model fixtures of the task tests."""

from tests.tasks.conftest import embedder, minilm_info, spacy_info  # noqa: F401
