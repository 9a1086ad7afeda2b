"""Shipped checkpoints, installed as vid2act.models; each folder has a README.md model card."""
