"""A buffer of previously generated images (Shrivastava et al.), so discriminators see a history of fakes."""
import torch


class ImagePool:
    """Up to ``pool_size`` earlier fakes, kept in host memory: on a GPU a full pool of 50 would otherwise hold 50 images
    per discriminator on the device (at 1024² RGB, 600 MiB each, more than a RevGAN step's activations); an image
    comes back to its batch's device only when it is drawn, one copy per image per step."""

    def __init__(self, pool_size):
        self.pool_size = pool_size
        self.images = []

    def query(self, images):
        """Returns a batch: each image is, with probability 1/2 once the pool is full, swapped for a stored one.
        Draws from torch's global RNG, which checkpoints save and restore."""
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.to("cpu", copy=True))
                out.append(image)
            elif torch.rand(1).item() > 0.5:
                i = int(torch.randint(0, self.pool_size, (1,)).item())
                out.append(self.images[i].to(image.device))
                self.images[i] = image.to("cpu", copy=True)
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self):
        return {"images": list(self.images)}

    def load_state_dict(self, state):
        self.images = [t.to("cpu") for t in state["images"]]
