"""What every lesson does first and last: honour its parameters (``FAST``, ``DEVICE``, ``SEED``, ``DATA``) and
check the reader's answers to its exercises.

Example:
    >>> lesson = setup(fast=True, device="cpu", seed=3, data=None)
    FAST=True, device=cpu, seed=3, data=phantom
    >>> lesson.device.type, lesson.seed
    ('cpu', 3)
    >>> check(1, None, 0.5)
    Exercise 1: not answered yet
    >>> check(2, 0.52, 0.5, tolerance=0.05)
    Exercise 2: correct
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lumbarlab.errors import LumbarLabError

__all__ = ["Lesson", "setup", "check"]


@dataclass(frozen=True)
class Lesson:
    """A lesson's parameters, applied: quick mode, the torch device, the seed, and the data folder (None: the
    phantom)."""

    fast: bool
    device: object
    seed: int
    data: Path | None


def setup(fast: bool, device: str = "auto", seed: int = 0, data=None) -> Lesson:
    """Apply a lesson's parameters: the device for the whole process (:func:`lumbarlab.device.use_device`, so
    training, predictors and the zoo follow it), every random generator seeded
    (:func:`lumbarlab.train.seed_everything`), and ``data`` checked — None or "phantom" for the built-in phantom,
    else a folder that must exist."""
    from lumbarlab.device import use_device
    from lumbarlab.train import seed_everything

    dev = use_device(device)
    seed_everything(int(seed))
    folder = None
    if data not in (None, "", "phantom"):
        folder = Path(data).expanduser()
        if not folder.exists():
            raise LumbarLabError(f"DATA = {data!r} does not exist; convert a dataset with `lumbarlab fetch NAME` or "
                                 "leave DATA as None for the phantom.")
    print(f"FAST={bool(fast)}, device={dev}, seed={int(seed)}, data={folder or 'phantom'}")
    return Lesson(bool(fast), dev, int(seed), folder)


def check(number: int, answer, expected, tolerance: float = 0.0) -> bool | None:
    """Print and return whether exercise ``number``'s ``answer`` matches ``expected``: numbers within
    ``tolerance``, text ignoring case and spaces at the ends, anything else by ``==``; None while unanswered."""
    import numbers

    if answer is None:
        print(f"Exercise {number}: not answered yet")
        return None
    if isinstance(expected, numbers.Number) and not isinstance(expected, bool):
        try:
            ok = abs(float(answer) - float(expected)) <= tolerance
        except (TypeError, ValueError):
            ok = False
    elif isinstance(expected, str):
        ok = str(answer).strip().lower() == expected.strip().lower()
    else:
        ok = answer == expected
    print(f"Exercise {number}: " + ("correct" if ok else "not quite — try again"))
    return bool(ok)
