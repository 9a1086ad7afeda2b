"""The video planner: text encoder, diffusion pipeline, training."""
