"""Exporting in a real browser: the Report tab's Export section queues an int8 variant of a trained classifier, its row
appears in the compression table with the numbers of its report.json, and the Playground answers with it.

Screenshots go to test-artifacts/ui/ (git-ignored), for a person to look at when a step fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.ui.conftest import Server, wait_for
from tests.ui.test_browser import STEP_TIMEOUT_MS, choose, log_in, open_tab
from tests.ui.test_browser_recipe import _open

EXPORT_TIMEOUT_S = 240
# Accents, a dash and Chinese in one text: the int8 variant reads what the original reads.
MIXED_TEXT = "Un film magnifique, émouvant et drôle — 这部电影非常感人，演员的表演很自然。"


def table_rows(page, component_id: str) -> dict[str, list[str]]:
    """The rows of a Gradio Dataframe as its cells' texts, by the first cell."""
    rows = {}
    for row in page.locator(f"#{component_id} [role=row]:has([role=gridcell])").all():
        cells = [cell.inner_text().strip() for cell in row.locator("[role=gridcell]").all()]
        if cells:
            rows[cells[0]] = cells
    return rows


@pytest.mark.slow
def test_export_to_int8_in_the_report_then_try_it_in_the_playground(
    server: Server, browser, trained_job: dict, artifacts: Path
):
    job_id = trained_job["id"]
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    log_in(page, server, "alice")

    # 1. Report: open the trained run, export it to int8 from its Export section.
    open_tab(page, "Report")
    choose(page, "report-job", job_id[:8], prefix=True)
    page.locator("#report-headline").get_by_text(job_id[:8]).wait_for()
    _open(page, "report-export", "Export for deployment")
    choose(page, "report-export-to", "int8 (quantized, CPU)")
    page.locator("#report-export-about").get_by_text("TorchScript").wait_for()
    page.locator("#report-export-start").click()
    message = page.locator("#report-export-message")
    message.get_by_text("it appears below when done").wait_for()
    export_id = re.search(r"export job\s*([0-9a-f]{16})", message.inner_text()).group(1)

    # 2. Refresh the table until the export has finished and its row is there.
    def int8_row() -> list[str] | None:
        status, job = server.api("GET", f"/api/jobs/{export_id}")
        assert status == 200 and job["status"] not in ("failed", "cancelled"), job
        page.locator("#report-export-refresh").click()
        page.wait_for_timeout(1500)
        return table_rows(page, "report-export-table").get("int8")

    int8 = wait_for(int8_row, EXPORT_TIMEOUT_S, "the int8 row in the export table", interval=2, log=server.worker_log)
    rows = table_rows(page, "report-export-table")
    original = rows["original"]
    header = [cell.inner_text().strip() for cell in page.locator("#report-export-table [role=columnheader]").all()]
    size, metric = header.index("Size (MB)"), header.index("Macro F1")
    assert float(int8[size]) < float(original[size])  # 8-bit Linear layers take less room than fp32 ones
    status, report = server.api("GET", f"/api/jobs/{export_id}/report")
    assert status == 200 and report["variant"]["name"] == "int8"
    assert float(int8[metric]) == pytest.approx(report["metrics"]["macro_f1"], abs=5e-4)
    assert float(original[metric]) == pytest.approx(report["original"]["metrics"]["macro_f1"], abs=5e-4)
    assert int8[header.index("Runtime")] == "torchscript" and int8[header.index("Speed-up")].endswith("×")
    assert page.locator("#report-export-chart circle").count() == 2  # the original and int8
    assert "speed-up" in page.locator("#report-export-how").inner_text()
    page.screenshot(path=str(artifacts / "export-report.png"), full_page=True)

    # 3. Playground: pick the run and its int8 variant, classify an accented and Chinese text.
    open_tab(page, "Playground")
    choose(page, "playground-model", job_id[:8], prefix=True)
    page.locator("#playground-refresh").click()  # the export finished after the page loaded
    page.wait_for_timeout(1000)
    choose(page, "playground-variant", "int8 (quantized, CPU)")
    page.locator("#playground-text textarea").fill(MIXED_TEXT)
    page.locator("#playground-classify").click()
    served = page.locator("#playground-served")
    served.get_by_text("int8").wait_for()
    assert served.inner_text().strip() == "Served by the int8 variant."
    result = page.locator("#playground-result").inner_text()
    assert "fresh" in result and "rotten" in result
    page.screenshot(path=str(artifacts / "export-playground.png"), full_page=True)
    context.close()
