"""ipywidgets panels, each usable inline in a notebook and as a Voilà dashboard.

Panels import torch/MONAI late (``import monai`` costs seconds on a cold start) and draw
figures into ``widgets.Image`` (never into an ``Output`` while a cell runs).
"""

from lumbarlab.widgets.cam_panel import CAMPanel
from lumbarlab.widgets.ct_panel import CTPanel
from lumbarlab.widgets.measurement import LandmarkJitterPanel, grade_flip_curve
from lumbarlab.widgets.metric_explorer import (
    ClassificationPanel,
    DetectionPanel,
    MetricExplorer,
    SegmentationPanel,
)
from lumbarlab.widgets.mri_panel import MRIPanel
from lumbarlab.widgets.phantom_explorer import PhantomExplorer
from lumbarlab.widgets.registration_panel import RegistrationPanel
from lumbarlab.widgets.view3d import view3d
from lumbarlab.widgets.xray_panel import XrayPanel

__all__ = ["PhantomExplorer", "MetricExplorer", "ClassificationPanel", "SegmentationPanel", "DetectionPanel", "view3d",
           "LandmarkJitterPanel", "grade_flip_curve", "CAMPanel", "XrayPanel", "CTPanel", "MRIPanel",
           "RegistrationPanel"]
