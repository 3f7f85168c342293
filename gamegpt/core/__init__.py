"""The training core: the GPT model with its KV cache, token shards, checkpoints and the training loop."""
