"""The adaptive micro-batcher shared by the server and the batch jobs."""
