"""The study report: papermill executes every notebook into build/, nbconvert renders offline pages into
reports/, with an index that reads as the study's front page.
"""

from vaestudy.report.build import build_report
from vaestudy.report.execute import (
    CELL_TIMEOUT_S,
    HEADLESS_ENGINE,
    INLINE_BACKEND,
    PARAMETER_NAMES,
    effective_parameters,
)
from vaestudy.report.html import (
    MATHJAX_CONFIG,
    MATHJAX_DIR,
    MATHJAX_PACKAGE,
    MATHJAX_URL,
    OFFLINE_TEMPLATE,
    REMOVE_CELL_TAGS,
    REMOVE_INPUT_TAGS,
    WIDGET_VIEW_MIME,
    for_html,
    install_mathjax,
    mathjax_source,
    offline_html_exporter,
    widget_note,
)
from vaestudy.report.paths import RESULTS_DIR_ENV, repo_root, results_dir
