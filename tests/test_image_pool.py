"""util.image_pool: the history of fakes the unpaired discriminators see, kept in host memory."""
import torch

from util.image_pool import ImagePool


def test_pool_fills_then_swaps_copies():
    torch.manual_seed(0)
    pool = ImagePool(3)
    first = torch.arange(3 * 2 * 4 * 4, dtype=torch.float32).view(3, 2, 4, 4)
    assert torch.equal(pool.query(first), first)  # filling: the batch comes back as it is
    first.add_(1000)  # the caller's tensor changing later does not change what was stored
    assert all(img.device.type == "cpu" and img.max() < 1000 for img in pool.images)
    seen_old = False
    for _ in range(20):
        new = torch.full((1, 2, 4, 4), -1.0)
        out = pool.query(new)
        assert out.shape == new.shape
        seen_old |= bool(out.max() >= 0)
    assert seen_old  # once full, stored images come back (probability 1/2 per draw)
    assert len(pool.images) == 3


def test_pool_state_round_trip_and_size_zero():
    pool = ImagePool(2)
    pool.query(torch.randn(2, 1, 3, 3))
    other = ImagePool(2)
    other.load_state_dict(pool.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(pool.images, other.images))
    x = torch.randn(1, 1, 3, 3)
    assert ImagePool(0).query(x) is x
