"""Pure ``nn.Module`` model families (no I/O, no training)."""
