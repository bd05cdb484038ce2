"""Fine-tuning: configs, step layout, objective, distributed step, checkpoints, the trainer loop."""
