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
from vaestudy.pipelines.exact_split import (
    ExactSplitConfig,
    SlabExchange,
    SplitUnsupported,
    compare_split_methods,
    crop_gather_bytes,
    decode_slab,
    exact_split_decode,
    exact_split_patches,
    exact_split_plan,
    exact_split_worker,
    exchange_bytes,
    format_split_rows,
    split_rules_of,
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
