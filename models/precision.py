"""Mixed precision for a model's training step: the autocast context of --amp and one gradient scaler per optimizer."""
import contextlib

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """``--amp none|bf16|fp16`` on ``device``. With fp16 every optimizer gets a gradient scaler (skips steps with
    inf/NaN gradients, adapts its scale; saved in checkpoints).

    Args:
        amp: none, bf16 or fp16.
        device: the model's device.
    """

    def __init__(self, amp: str, device: torch.device):
        if amp not in ("none",) + tuple(AMP_DTYPES):
            raise ValueError(f"amp must be none, bf16 or fp16, got {amp!r}")
        self.amp, self.device = amp, device
        self.scalers: dict = {}  # id(optimizer) -> GradScaler

    def add_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.scalers[id(optimizer)] = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")

    def autocast(self):
        """The forward passes' context: autocast to --amp's dtype, or nothing."""
        if self.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AMP_DTYPES[self.amp])

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward of ``loss`` (outside autocast) and one step of ``optimizer``; with fp16 through its scaler."""
        scaler = self.scalers.get(id(optimizer))
        with torch.autocast(self.device.type, enabled=False):
            (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    def loss_scale(self, optimizer: torch.optim.Optimizer) -> float:
        """The current scale of ``optimizer``'s fp16 gradient scaler (1 without one), for gradients a loss takes
        itself (the WGAN-GP penalty)."""
        scaler = self.scalers.get(id(optimizer))
        return scaler.get_scale() if scaler is not None and scaler.is_enabled() else 1.0

    def state_dicts(self, optimizers) -> list:
        return [self.scalers[id(o)].state_dict() for o in optimizers if id(o) in self.scalers]

    def load_state_dicts(self, optimizers, states) -> None:
        for o, s in zip(optimizers, states):
            scaler = self.scalers.get(id(o))
            if scaler is not None and s and scaler.is_enabled():  # an fp32 run's are empty; fp16 starts its own
                scaler.load_state_dict(s)
