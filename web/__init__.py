"""The FastAPI app: the tokenised agency form and the coordinator dashboard."""
