"""bam-mix's PyTorch reference implementation of BAM for transformers (see docs/bam-format.md)."""
