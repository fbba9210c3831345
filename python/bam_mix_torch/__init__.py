"""bam_mix_torch: bam-mix's BAM and BTX mixtures in PyTorch and transformers.

- `BamConfig`, `BamForCausalLM`: the BAM model (configuration_bam.py, modeling_bam.py; the same two
  files `bam-mix mix` writes beside every BAM checkpoint for `trust_remote_code`). Importing this
  package also registers them with transformers' Auto classes, so `AutoModelForCausalLM` loads a BAM
  checkpoint without remote code.
- `python -m bam_mix_torch.finetune` (or under torchrun, FSDP2): `bam-mix finetune`'s objective,
  data and defaults on many processes (docs/distributed.md in the bam-mix repository).
"""

from .configuration_bam import BamConfig
from .modeling_bam import BamForCausalLM, BamModel, BamPreTrainedModel

__version__ = "0.1.0"


def _register():
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        AutoConfig.register("bam", BamConfig)
        AutoModelForCausalLM.register(BamConfig, BamForCausalLM)
    except ValueError:  # already registered (a second import under another name)
        pass


_register()

__all__ = ["BamConfig", "BamForCausalLM", "BamModel", "BamPreTrainedModel", "__version__"]
