"""The model zoo: small models trained by our own recipes on the phantom, with a manifest.

Each recipe names the modality, task, spatial dimensions and network, the dataset builder and phantom
seeds of its train / validation / test splits, the training settings and a floor on the held-out test
split. Modules: ``recipes`` (what), ``data`` (where the data comes from), ``tasks`` (losses, decoding,
scoring), ``store`` (checkpoints, manifest, loading), ``training``, ``verify``. ``train`` runs the recipe and writes a
checkpoint (state dict only, loaded with ``weights_only=True``) and a manifest entry with the
file's sha256 and the test metrics; ``verify`` recomputes the metrics and checks the hash; ``load``
refuses a checkpoint whose hash is not the manifest's.

| name | task | floor on the test split |
| --- | --- | --- |
| ``xray-slip`` | spondylolisthesis vs normal, lateral radiograph | AUC ≥ 0.95 |
| ``xray-vertebrae`` | vertebral bodies + sacrum segmentation | mean Dice ≥ 0.90 |
| ``xray-corners`` | 22 vertebral body corners (L1–L5, S1 endplate) as heatmaps | mean radial error ≤ 2 mm |

Command line: ``lumbarlab zoo list | verify [NAME] | train NAME``.

Example:
    >>> from lumbarlab import zoo
    >>> from lumbarlab.phantom.fast2d import lateral_radiographs
    >>> model = zoo.load("xray-vertebrae")          # checked against the manifest's sha256
    >>> import numpy as np
    >>> images = np.stack([r.image for r in lateral_radiographs(2, seed=5, size=256)])
    >>> masks = zoo.predictor("xray-vertebrae")(images)
    >>> masks.shape, sorted(set(masks.ravel().tolist()))   # background, bodies, sacrum
    ((2, 256, 256), [0, 1, 2])
"""

from lumbarlab.zoo.data import BUILDERS, Builder
from lumbarlab.zoo.recipes import RECIPES, Recipe, aliases, resolve
from lumbarlab.zoo.store import (
           ZooEntry,
           build,
           checkpoint_path,
           entries,
           load,
           predictor,
           sha256,
           weights_dir,
)
from lumbarlab.zoo.tasks import TASKS, predict_landmarks
from lumbarlab.zoo.training import evaluate, test_split, train
from lumbarlab.zoo.verify import VerifyResult, verify

__all__ = ["RECIPES", "Recipe", "resolve", "aliases", "ZooEntry", "entries", "load", "predictor", "predict_landmarks",
           "verify", "VerifyResult", "train", "evaluate", "test_split", "sha256", "weights_dir", "checkpoint_path",
           "build", "BUILDERS", "Builder", "TASKS"]
