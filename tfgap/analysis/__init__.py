"""tfgap.analysis: the paper's analyses of trained networks and of many runs.

- dormant neurons (Sokar et al. 2023): `dormant_fractions`, `dormant_metrics`, `DormantTracker`;
- Grad-CAM (Selvaraju et al. 2017): `grad_cam`, `save_overlay`, `save_grid`;
- effective bottleneck parameters and density: `effective_parameters`;
- aggregation of runs' metrics.jsonl with rliable (IQM, median, mean, optimality gap with
  stratified-bootstrap CIs, probability of improvement, performance profiles): `load_runs`,
  `select_scores`, `score_matrices`, `aggregate_scores`, ...

Figures live in `tfgap.analysis.plots` (matplotlib Agg), the report command in
`tfgap.launch.report`. See docs/analysis.md.
"""

from tfgap.analysis.aggregate import aggregate_scores
from tfgap.analysis.aggregate import human_normalize
from tfgap.analysis.aggregate import learning_curves
from tfgap.analysis.aggregate import load_runs
from tfgap.analysis.aggregate import performance_profiles
from tfgap.analysis.aggregate import probability_of_improvement
from tfgap.analysis.aggregate import score_matrices
from tfgap.analysis.aggregate import select_scores
from tfgap.analysis.dormant import dormant_fractions
from tfgap.analysis.dormant import dormant_metrics
from tfgap.analysis.dormant import DormantTracker
from tfgap.analysis.effective import effective_parameters
from tfgap.analysis.gradcam import grad_cam
from tfgap.analysis.gradcam import save_grid
from tfgap.analysis.gradcam import save_overlay

__all__ = [
    "aggregate_scores", "human_normalize", "learning_curves", "load_runs", "performance_profiles",
    "probability_of_improvement", "score_matrices", "select_scores", "dormant_fractions",
    "dormant_metrics", "DormantTracker", "effective_parameters", "grad_cam", "save_grid",
    "save_overlay",
]
