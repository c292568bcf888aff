"""Feedback reports, the class dashboard and the grade exports, rendered from the sample
results in ``tests/fixtures/results/`` (see its README) and checked as text, as parsed HTML,
and in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, via selenium).
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

import pytest
from markupsafe import escape

from autograder.report import (
    REPORT_FILE,
    gradescope_results,
    write_canvas_csv,
    write_dashboard,
    write_feedback,
    write_gradescope,
)
from autograder.report.render import fmt_points, fmt_seconds, fmt_when, plural
from autograder.results import SubmissionResult, read_results

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "results"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ASSIGNMENT = "lesson25"
HOSTILE = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


# -- helpers ------------------------------------------------------------------------------
class _Tables(HTMLParser):
    """Text of every ``<table id=...>``'s body rows, plus every element's attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self._table: str | None = None
        self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.elements.append((tag, found))
        table_id = found.get("id")
        if tag == "table" and table_id:
            self._table = table_id
            self.tables[table_id] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table and self._in_body:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def attribute(html: str, tag: str, name: str) -> list[str]:
    """The values of attribute ``name`` on every ``tag`` element, in document order."""
    return [
        value
        for found, attrs in parse(html).elements
        if found == tag and (value := attrs.get(name)) is not None
    ]


@dataclass(frozen=True)
class Site:
    """Every page rendered from the fixtures into one folder."""

    root: Path
    results: dict[str, SubmissionResult]
    dashboard: Path

    def report(self, student: str) -> Path:
        return self.root / "feedback" / student / ASSIGNMENT / REPORT_FILE

    def html(self, student: str) -> str:
        return self.report(student).read_text("utf-8")


def href_for(result: SubmissionResult) -> str:
    return f"{quote(result.student)}/{quote(result.assignment)}/{REPORT_FILE}"


def render_site(root: Path, results: list[SubmissionResult], **options: bool) -> Site:
    for result in results:
        write_feedback(
            result,
            FIXTURES / result.student / ASSIGNMENT,
            root / "feedback" / result.student / ASSIGNMENT,
            **options,
        )
    dashboard = write_dashboard(results, root / "feedback" / "dashboard.html", report_href=href_for)
    return Site(root, {r.student: r for r in results}, dashboard)


@pytest.fixture(scope="module")
def results() -> list[SubmissionResult]:
    return read_results(FIXTURES, ASSIGNMENT)


@pytest.fixture(scope="module")
def site(results: list[SubmissionResult], tmp_path_factory: pytest.TempPathFactory) -> Site:
    return render_site(tmp_path_factory.mktemp("site"), results)


@pytest.fixture(scope="module")
def grader_site(results: list[SubmissionResult], tmp_path_factory: pytest.TempPathFactory) -> Site:
    return render_site(tmp_path_factory.mktemp("grader"), results, show_hidden=True)


def hidden_names(result: SubmissionResult) -> list[str]:
    return [c.check for cell in result.cells for c in cell.checks if not c.visible]


def visible_names(result: SubmissionResult) -> list[str]:
    return [c.check for cell in result.cells for c in cell.checks if c.visible]


# -- the fixtures -------------------------------------------------------------------------
def test_fixtures_cover_the_cases(results: list[SubmissionResult]) -> None:
    by_student = {r.student: r for r in results}
    assert [r.student for r in results] == sorted(by_student)
    assert {s: r.status for s, r in by_student.items()} == {
        "ivanova": "ok",
        "kuznetsov": "ok",
        "orlov": "timeout",
        "petrov": "cell-error",
        "sidorova": "cell-error",
        "smirnov": "cell-error",
        "volkova": "memory-limit",
    }
    assert by_student["ivanova"].score == by_student["ivanova"].max_score - 2  # 2 manual points
    assert by_student["kuznetsov"].late_days > 0
    assert HOSTILE in by_student["smirnov"].student_name


# -- feedback -----------------------------------------------------------------------------
def test_perfect_report_shows_scores_checks_run_and_plots(site: Site) -> None:
    result = site.results["ivanova"]
    html = site.html("ivanova")
    assert "16 / 18" in html
    assert "2 балла из 18 выставит преподаватель вручную позже" in html
    assert "выполнен без ошибок" in html and "Время выполнения: 1 мин 11 с" in html
    assert "Устройство: CPU" in html
    assert "Пиковая память: 957.4 МБ" in html
    scores = parse(html).tables["scores"]
    assert [row[0] for row in scores] == [c.grade_id for c in result.cells]
    manual = [row for row in scores if row[0] in ("answer_cnn128", "answer_gru")]
    assert manual == [
        [g, "—", "1", "проверяется вручную позже"] for g in ("answer_cnn128", "answer_gru")
    ]
    for name in visible_names(result):
        assert name in html
    assert html.count("✓ пройдена") == len(visible_names(result))
    for name in hidden_names(result):
        assert name not in html
    assert html.count("1 скрытая проверка: пройдено 1, не пройдено 0.") == 8
    # the grader's measurement beside the student's claim, with the threshold
    assert "cnn_model test accuracy" in html and "0.9877" in html and "&gt;= 0.970" in html
    images = attribute(html, "img", "src")
    assert images == [
        "plots/saved/cnn128_accuracy.png",
        "plots/saved/gru_loss.png",
        *[f"plots/figures/figure-{n}.png" for n in range(1, 5)],
    ]
    run = FIXTURES / "ivanova" / ASSIGNMENT / "run" / "artifacts"
    report_dir = site.report("ivanova").parent
    assert (report_dir / images[0]).read_bytes() == (run / "files/cnn128_accuracy.png").read_bytes()
    assert (report_dir / images[2]).read_bytes() == (run / "figures/figure-1.png").read_bytes()
    assert "Рисунок 1: Accuracy по эпохам" in html


def test_failed_layer_stack_is_shown_side_by_side(site: Site, grader_site: Site) -> None:
    html = site.html("petrov")
    assert "13 / 18" in html
    assert "`cnn128_model` needs a Conv2D(128, (3, 3)) layer" in html  # the visible check
    layers = parse(html)
    marked = [attrs.get("class") for tag, attrs in layers.elements if tag == "tr"]
    assert marked.count("first-diff") == 1
    assert "Первое расхождение — строка 5." in html
    start = html.index('<tr class="first-diff">')
    first_row = html[start : html.index("</tr>", start)]
    assert "Conv2D(128, 3x3, relu)" in first_row and "Flatten()" in first_row
    assert "(None, 3, 3, 128)" in first_row and "(None, 1600)" in first_row
    assert "— нет слоя —" in html  # the found stack is shorter
    # the hidden check is summarized, not named, and its message is not shown...
    assert "1 скрытая проверка: пройдено 0, не пройдено 1." in html
    assert "test_cnn128_layer_stack" not in html
    assert "layer 5: expected" not in html
    # ...unless the grader asks for it
    graded = grader_site.html("petrov")
    assert "test_hidden::test_cnn128_layer_stack" in graded
    assert "layer 5: expected Conv2D(128, 3x3, relu)" in graded
    assert "скрытая проверка:" not in graded


def test_hidden_evidence_can_be_withheld(results: list[SubmissionResult], tmp_path: Path) -> None:
    petrov = next(r for r in results if r.student == "petrov")
    page = write_feedback(petrov, FIXTURES / "petrov" / ASSIGNMENT, tmp_path, hidden_evidence=False)
    html = page.read_text("utf-8")
    assert 'class="layers"' not in html and "Измерения проверяющей программы" not in html
    assert "1 скрытая проверка: пройдено 0, не пройдено 1." in html


def test_crashed_run_shows_the_students_traceback(site: Site) -> None:
    html = site.html("sidorova")
    assert "ошибка в ячейке" in html
    assert "Ячейка 7 (cnn_build)" in html and "Ячейка 8 (test_cnn_architecture)" in html
    record = json.loads((FIXTURES / "sidorova" / ASSIGNMENT / "run" / "run.json").read_text())
    for error in record["errors"]:
        assert str(escape(error["traceback"])) in html
    assert html.index("Ячейка 7") < html.index("Ячейка 8")
    assert "no Keras model named `cnn_model` was found" in html
    assert "<img" not in html  # no plots were harvested


def test_late_submission_shows_days_and_penalty(site: Site, grader_site: Site) -> None:
    html = site.html("kuznetsov")
    assert "12.8 / 18" in html
    assert "До штрафа: 16; штраф за опоздание: −3.2." in html
    assert "опоздание 1.5 дн." in html
    assert "Сдано: 20.12.2026 11:59 (UTC+03:00)" in html
    assert "Срок сдачи: 18.12.2026 23:59 (UTC+03:00)" in html
    assert "NVIDIA H200" in html
    row = next(r for r in parse(html).tables["scores"] if r[0] == "test_cnn_training")
    assert row[1:3] == ["2", "2"]
    assert "0.995" in html and "0.9731" in html  # claimed beside measured
    assert "the grader measured 0.9731" not in html  # grader flags only in the grader's view
    assert "the grader measured 0.9731" in grader_site.html("kuznetsov")


def test_grader_errors_and_limits_are_explained(site: Site) -> None:
    html = site.html("volkova")
    assert "превышен лимит памяти" in html and "memory limit of 6144 MB reached" in html
    assert "балл уточнит преподаватель" in html
    assert "не отработало (не засчитывается против вас) 1" in html
    assert "cannot identify image file" not in html  # a hidden check's message
    assert "15 мин 25 с" in site.html("orlov")


def test_untrusted_text_is_escaped_everywhere(site: Site) -> None:
    pages = {"report": site.html("smirnov"), "dashboard": site.dashboard.read_text("utf-8")}
    for name, html in pages.items():
        assert "<script" not in html, name
        assert "<img src=x" not in html and "<b>" not in html, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, name
    report = pages["report"]
    assert "Олег &lt;script&gt;alert(1)&lt;/script&gt; &#34;Смирнов&#34; &amp; " in report
    assert "boom &lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(2)&gt;" in report


def test_only_png_files_inside_the_run_folder_are_copied(site: Site) -> None:
    report_dir = site.report("smirnov").parent
    copied = sorted(
        p.relative_to(report_dir).as_posix()
        for p in (report_dir / "plots").rglob("*")
        if p.is_file()
    )
    assert copied == ["plots/saved/точность модели #1 & 50%.png"]
    images = attribute(site.html("smirnov"), "img", "src")
    assert images == ["plots/saved/" + quote("точность модели #1 & 50%.png")]
    assert "passwd" not in site.html("smirnov") and "hostname" not in site.html("smirnov")


def test_show_hidden_reveals_names_messages_and_flags(site: Site, grader_site: Site) -> None:
    for student, result in site.results.items():
        default, graded = site.html(student), grader_site.html(student)
        for name in hidden_names(result):
            assert name not in default and name in graded
    assert "hidden secret message" not in site.html("smirnov")
    assert "hidden secret message &lt;script&gt;" in grader_site.html("smirnov")
    assert "Отметки для проверяющего" in grader_site.html("sidorova")
    assert "Отметки для проверяющего" not in site.html("sidorova")


def test_output_is_byte_identical(
    results: list[SubmissionResult], site: Site, tmp_path: Path
) -> None:
    shuffled = list(results)
    random.Random(7).shuffle(shuffled)
    again = render_site(tmp_path, shuffled)
    assert again.dashboard.read_bytes() == site.dashboard.read_bytes()
    for student in site.results:
        first, second = site.report(student).parent, again.report(student).parent
        files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
        for relative in files:
            assert (first / relative).read_bytes() == (second / relative).read_bytes()
    # rendering into the same folder again replaces, and leaves no stale plots behind
    ivanova = site.results["ivanova"]
    stale = again.report("petrov").parent
    write_feedback(ivanova, FIXTURES / "ivanova" / ASSIGNMENT, stale)
    assert (stale / "plots/saved/gru_loss.png").read_bytes() == (
        site.report("ivanova").parent / "plots/saved/gru_loss.png"
    ).read_bytes()
    write_feedback(site.results["sidorova"], FIXTURES / "sidorova" / ASSIGNMENT, stale)
    assert not (stale / "plots").exists()
    assert sorted(p.name for p in stale.iterdir()) == [REPORT_FILE]


def test_report_without_a_run_record(results: list[SubmissionResult], tmp_path: Path) -> None:
    page = write_feedback(results[0], tmp_path / "nothing-here", tmp_path / "out")
    html = page.read_text("utf-8")
    assert "Запись о запуске (run.json) не найдена." in html and "<img" not in html


def test_formatting_helpers() -> None:
    forms = ("скрытая проверка", "скрытые проверки", "скрытых проверок")
    assert [plural(n, *forms).split(" ", 1)[1] for n in (1, 2, 5, 11, 12, 21, 22, 25, 101)] == [
        forms[0],
        forms[1],
        forms[2],
        forms[2],
        forms[2],
        forms[0],
        forms[1],
        forms[2],
        forms[0],
    ]
    assert [fmt_points(v) for v in (16.0, 13.6, 4 / 3, -0.0, None)] == [
        "16",
        "13.6",
        "1.33",
        "0",
        "—",
    ]
    assert [fmt_seconds(v) for v in (0.04, 59.94, 59.96, 71.04, 924.77)] == [
        "0.0 с",
        "59.9 с",
        "1 мин 00 с",
        "1 мин 11 с",
        "15 мин 25 с",
    ]
    assert fmt_when("2026-12-18T23:59:00") == "18.12.2026 23:59"
    assert fmt_when("2026-12-18T20:59:00-05:30") == "18.12.2026 20:59 (UTC-05:30)"
    assert fmt_when("yesterday") == "yesterday" and fmt_when(None) == "—"


# -- dashboard ----------------------------------------------------------------------------
def test_dashboard_lists_rates_flags_and_students(site: Site) -> None:
    html = site.dashboard.read_text("utf-8")
    tables = parse(html).tables
    groups = [row[0] for row in tables["check-rates"] if len(row) == 1]
    assert groups == [c.grade_id for c in site.results["ivanova"].cells if c.autograded]
    rates = {row[0]: row for row in tables["check-rates"] if len(row) > 1}
    assert len(rates) == 18  # hidden checks included: it is for graders
    stack = rates["test_hidden::test_cnn128_layer_stack"]
    assert stack[1:5] == ["скрытая", "6", "1", "0"] and stack[5] == "86%"
    plot = rates["test_hidden::test_cnn128_plot_shows_training"]
    assert plot[2:5] == ["5", "1", "1"]  # orlov failed, volkova's check hit a grader error
    flagged = {row[0].split()[-1]: row for row in tables["flagged"]}
    assert sorted(flagged) == ["kuznetsov", "orlov", "petrov", "sidorova", "smirnov", "volkova"]
    assert "расхождение метрик" in flagged["kuznetsov"][1]
    assert "опоздание" in flagged["kuznetsov"][1]
    assert "тайм-аут" in flagged["orlov"][1]
    assert "лимит песочницы" in flagged["volkova"][1] and "нужен человек" in flagged["volkova"][1]
    assert "ошибка выполнения" in flagged["sidorova"][1]
    slowest = tables["slowest"]
    assert slowest[0][0] == "Глеб Орлов" and slowest[0][3] == "15 мин 25 с"
    students = tables["students"]
    assert [row[0] for row in students] == sorted(site.results)
    assert [row[2] for row in students] == [
        f"{r.score:g} / 18" for _, r in sorted(site.results.items())
    ]
    links = attribute(html, "a", "href")
    for student in site.results:
        assert f"{student}/{ASSIGNMENT}/{REPORT_FILE}" in links
    assert "<svg" in html and html.count("<rect") == 10
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")


def test_empty_dashboard(tmp_path: Path) -> None:
    page = write_dashboard([], tmp_path / "dashboard.html", report_href=href_for)
    assert "Нет проверенных работ." in page.read_text("utf-8")


# -- exports ------------------------------------------------------------------------------
def test_gradescope_results(results: list[SubmissionResult], tmp_path: Path) -> None:
    for result in results:
        path = write_gradescope(result, tmp_path / result.student / "results.json")
        data = json.loads(path.read_text("utf-8"))
        assert data == gradescope_results(result)
        assert set(data) >= {"score", "output", "tests"}
        assert data["score"] == pytest.approx(result.score)
        tests = data["tests"]
        for test in tests:
            assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
            assert test["visibility"] in ("visible", "hidden")
            assert 0 <= test["score"] <= test["max_score"] + 1e-9
        autograded = sum(c.points for c in result.cells if c.autograded)
        assert sum(t["max_score"] for t in tests) == pytest.approx(autograded, abs=2e-3)
        assert sum(t["score"] for t in tests) == pytest.approx(result.raw_score, abs=2e-3)
        hidden = [t for t in tests if t["visibility"] == "hidden"]
        assert len(hidden) == len(hidden_names(result))
        assert path.read_bytes() == write_gradescope(result, tmp_path / "again.json").read_bytes()
    volkova = gradescope_results(next(r for r in results if r.student == "volkova"))
    errored = next(t for t in volkova["tests"] if "test_cnn128_plot_shows_training" in t["name"])
    assert errored["max_score"] == 0 and "grader error" in errored["output"]
    late = gradescope_results(next(r for r in results if r.student == "kuznetsov"))
    assert "Late by 1.5 day(s): -3.2 point(s) from 16" in late["output"]
    assert "Graded by hand later: answer_cnn128, answer_gru (2 point(s))" in late["output"]


def test_canvas_csv(results: list[SubmissionResult], tmp_path: Path) -> None:
    column = "Урок 25 (1234)"
    path = write_canvas_csv(
        list(reversed(results)), tmp_path / "canvas.csv", assignment_column=column
    )
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Student", "ID", "SIS User ID", "Section", column]
    by_id = {r.student: r for r in results}
    assert [row[2] for row in rows[1:]] == sorted(by_id)
    for name, canvas_id, sis, section, score in rows[1:]:
        assert (name, canvas_id, section) == (by_id[sis].student_name, "", "")
        assert float(score) == pytest.approx(by_id[sis].score)
    again = write_canvas_csv(results, tmp_path / "again.csv", assignment_column=column)
    assert again.read_bytes() == path.read_bytes()


# -- a real browser -----------------------------------------------------------------------
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing: apt-get install chromium chromium-driver",
)
def test_pages_in_headless_chromium(site: Site, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {
        "dashboard": site.dashboard,
        "report-petrov": site.report("petrov"),
        "report-ivanova": site.report("ivanova"),
        "report-smirnov": site.report("smirnov"),
    }
    pages = [site.dashboard, *(site.report(s) for s in sorted(site.results))]
    try:
        for page in pages:
            check_page(driver, page)
        for name, page in shots.items():
            driver.get(page.as_uri())
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1280, min(int(height) + 140, 6000))
            assert driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    finally:
        driver.quit()


def check_page(driver: WebDriver, page: Path) -> None:
    """No severe console entries, no scripts, every image decoded, every local link (and
    in-page anchor) resolves."""
    script = driver.execute_script
    driver.get(page.as_uri())
    logs = driver.get_log("browser")  # type: ignore[no-untyped-call]
    assert [e for e in logs if e["level"] == "SEVERE"] == [], page
    assert script("return document.scripts.length") == 0
    images = script(
        "return Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth])"
    )
    assert isinstance(images, list)
    for src, complete, width in images:
        assert complete and width > 0, (page, src)
    hrefs = script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    assert isinstance(hrefs, list)
    for href in hrefs:
        parts = urlsplit(href)
        assert parts.scheme == "file", (page, href)
        target = Path(url2pathname(parts.path))
        assert target.is_file(), (page, href)
        if parts.fragment and target == page:
            found = script(
                f"return document.getElementById({json.dumps(unquote(parts.fragment))}) !== null"
            )
            assert found, (page, href)
