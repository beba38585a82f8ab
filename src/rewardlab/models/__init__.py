"""The reward model contract (:mod:`.reward_model`), its batch layout and padding-free fast path, LoRA, backbones, and the kinds trained elsewhere (foreign, DPO implicit)."""
