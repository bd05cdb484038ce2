"""Training data: readers that group texts by meaning, and a batch sampler that respects groups."""
