"""Decode inside a pipeline: overlapped with generation, streamed between two ranks, split across ranks,
and the launcher that runs the ranks (torch.distributed).
"""

from vaestudy.pipelines.distributed import (
    TASKS,
    DistributedRunError,
    blame,
    free_port,
    init,
    launch,
    launch_local,
    run_task,
    torchrun_command,
    worker_main,
)
from vaestudy.pipelines.overlap import (
    POLICIES,
    ChunkHandoff,
    GeneratorStandIn,
    OverlapRun,
    Span,
    first_chunk_frames,
    format_overlap_rows,
    isolated_costs,
    overlap_model,
    overlap_sweep,
    run_overlap,
    scope_ceiling,
    steps_for_share,
)
from vaestudy.pipelines.plots import LANE_COLORS, QUEUE_COLORS, frame_latency, gantt, halo_sweep, queue_depths
from vaestudy.pipelines.queues import BoundedQueue, FrameRing
from vaestudy.pipelines.split import (
    BLEND_MODES,
    SplitConfig,
    SplitPart,
    assemble,
    column_weights,
    rf_halos,
    seams_px,
    split_decode,
    split_plan,
    split_worker,
)
from vaestudy.pipelines.two_device import (
    TwoDeviceConfig,
    capture_frames,
    ceiling_grid,
    contention_from,
    inject_failure,
    summarize_two_device,
    two_device_worker,
)
