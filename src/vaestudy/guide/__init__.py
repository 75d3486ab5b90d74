"""The study guide: experiments shared by the CLI and notebooks, quality experiments, the study's
measurements, the claims table with verdicts, the checklist and the index's headlines.
"""

from vaestudy.guide.claims import (
    REFERENCE_ANCHORS,
    THRESHOLD_RULES,
    THRESHOLDS,
    VERDICTS,
    check_row,
    claims,
    critical_share_for_gain,
    judge_below,
    judge_close,
    judge_exact,
    judge_factor,
    judge_in_range,
    judge_slower,
    make_row,
    raw_compression,
    reference_provenance,
    threshold_rows,
    verdict_counts,
    verdict_table,
)
from vaestudy.guide.comparisons import format_strategy_table, strategy_table
from vaestudy.guide.quality import (
    attention_locality,
    chunking_compare,
    clip_latent,
    decoder_attention,
    encode_video,
    groupnorm_effect,
    load_model,
    streaming_timeline,
    tile_explorer,
    tiled_row,
    tiling_sweep,
    weights_caption,
)
from vaestudy.guide.sources import (
    CLAIMS_TABLE_FILE,
    EVIDENCE,
    SOURCE_CLAIMS,
    SOURCE_FILES,
    SOURCE_NAMES,
    SOURCE_PAGES,
    SOURCES,
    SourceClaim,
    read_claims_table,
    seed_pipeline,
    seed_shares,
    source_claim,
)
from vaestudy.guide.study import (
    COST_FAMILIES,
    GROUPNORM_FAMILY,
    STREAMING_FAMILY,
    Study,
    chunked_flops_per_px,
    family_strategies,
    memory_sweep,
    slow_conv3d_demo,
    stage_profile,
    strategy_costs,
)
from vaestudy.guide.summary import (
    EXPERIMENTS,
    checklist,
    experiments,
    headlines,
    markdown_table,
    measured_stand_in,
    rules_checklist,
)
