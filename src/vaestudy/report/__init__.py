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
    figure_file,
    figure_outputs,
    for_html,
    install_mathjax,
    mathjax_source,
    offline_html_exporter,
    widget_note,
)
from vaestudy.report.index import (
    ANSWER_CHARS,
    ANSWER_ITEMS,
    FAILED_CELL_LINES,
    HEADLINE_CHARS,
    HEADLINE_TAG,
    KEY_FIGURE_TAG,
    LEARN_MARKER,
    MEASURED_HEADING,
    MIN_SENTENCE,
    PAPERMILL_ERROR_TAG,
    Entry,
    Span,
    blocks,
    entries,
    failing_cell,
    headline,
    key_figure,
    notebook_title,
    parse_inline,
    plain,
    render,
    shorten,
    tex_to_text,
    what_it_answers,
)
from vaestudy.report.paths import RESULTS_DIR_ENV, repo_root, results_dir
