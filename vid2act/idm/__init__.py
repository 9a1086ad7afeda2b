"""The inverse-dynamics model: architecture, training, and reading actions off frames."""
