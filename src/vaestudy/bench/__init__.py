"""Benchmarks of a decode: configurations, the runner (repeats, isolation, sweeps that resume), peak memory,
frame consumers, the results store, the hardware ceiling and the planner fitted on the records.

Timing reads the one clock (:mod:`vaestudy.clock`).
"""

from vaestudy.bench.chunk_curve import (
    KNEE_FRACTION,
    cached_families,
    chunk_curve,
    chunk_sizes,
    curve_configs,
    curve_table,
    knee,
    seed_point,
    seed_reference,
)
from vaestudy.bench.config import (
    CONSUMERS,
    DTYPES,
    IDENTITY_FIELDS,
    BenchConfig,
    build_configs,
    config_key,
    validate_config,
)
from vaestudy.bench.consumers import DiscardConsumer, KeepConsumer, VideoConsumer, open_consumer
from vaestudy.bench.costmodel import (
    MEMORY_FEATURES,
    MIN_POINTS,
    TIME_FEATURES,
    WEIGHT_CONFIG,
    CostModel,
    LinearFit,
    Selection,
    error_summary,
    features,
    fit_cost_model,
    fit_linear,
    fit_range,
    hardware_of,
    holdout_errors,
    holdout_text,
    outside_range,
    range_text,
    record_features,
    record_params,
    select_records,
    setup,
    setup_text,
    unmeasured_setup,
    usable,
)
from vaestudy.bench.environment import cpu_model_name, device_name, environment, utc_now
from vaestudy.bench.levers import (
    GOAL_VS_DECODE,
    LEVERS,
    lever_plan,
    lever_subject,
    levers_table,
    levers_verdict,
    measure_levers,
)
from vaestudy.bench.memory import M_MMAP_THRESHOLD, PeakMemory, exact_rss, measure_peak
from vaestudy.bench.planner import (
    candidates,
    describe,
    format_table,
    plan,
    plan_text,
    seed_comparison,
    smallest,
    table_rows,
)
from vaestudy.bench.reference import FILES, REFERENCE_ROOT, load_reference, reference_dir, reference_names
from vaestudy.bench.roofline import PEAK_SHAPES, flops_per_pixel_frame, fraction_of_peak, machine_peak
from vaestudy.bench.runner import (
    count_flops,
    isolated_probe,
    iter_strategy,
    make_record,
    measure,
    measure_interleaved,
    new_run_id,
    run_once,
    sweep,
)
from vaestudy.bench.store import (
    GROUP_FIELDS,
    ResultStore,
    column,
    format_summary,
    growth,
    label,
    select,
    series,
    with_ratios,
)
from vaestudy.bench.tiled_chunked_cost import cost_table, cost_tradeoff, cost_verdict, tiled_chunked_cost
