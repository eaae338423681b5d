"""The printable label: a real PDF with the tracking number, addresses and a barcode."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import httpx
import pypdf

from tools.carrier import SANDBOX_API_KEY, Label, LabelRequest
from tools.carrier.pdf import render_label_pdf
from tools.carrier.testing import example_label_request

AUTH = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}


def a_label(**changes: object) -> Label:
    values: dict[str, object] = {
        "id": "lbl_0123456789abcdef",
        "tracking_number": "PRC004815162342",
        "status": "created",
        "created_at": datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        "request": example_label_request(),
        "pdf_url": "/v1/labels/lbl_0123456789abcdef/pdf",
    }
    return Label.model_validate(values | changes)


def text_of(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def test_label_pdf_is_one_a6_page_with_everything_printed() -> None:
    pdf = render_label_pdf(a_label())
    assert pdf.startswith(b"%PDF-")
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (298, 420)
    text = text_of(pdf)
    for expected in (
        "PARCELO",
        "RETURN - STANDARD",
        "PRC004815162342",
        "Ada Lovelace",
        "12 Analytical Row",
        "N1 9GU London",
        "Shop Returns Centre",
        "Gate B",
        "BS1 4XX Bristol",
        "Return reference: R-1042",
        "Weight: 800 g",
    ):
        assert expected in text
    assert "VOID" not in text


def test_label_pdf_has_a_barcode() -> None:
    # Code 128 bars are filled rectangles: dozens of `re` operators in the content stream.
    page = pypdf.PdfReader(io.BytesIO(render_label_pdf(a_label()))).pages[0]
    content = page.get_contents()
    assert content is not None
    assert content.get_data().count(b" re") > 30


def test_voided_label_is_stamped() -> None:
    text = text_of(render_label_pdf(a_label(status="voided", voided_at=datetime.now(UTC))))
    assert "VOID" in text


def test_rendering_is_deterministic() -> None:
    assert render_label_pdf(a_label()) == render_label_pdf(a_label())


def test_long_lines_still_print() -> None:
    request = example_label_request().model_copy(
        update={
            "from_address": example_label_request().from_address.model_copy(
                update={"name": "Wolfeschlegelsteinhausenbergerdorff " * 2}
            )
        }
    )
    text = text_of(render_label_pdf(a_label(request=request)))
    assert "Wolfeschlegelsteinhausenbergerdorff" in text


async def test_pdf_endpoint_serves_the_label(
    http: httpx.AsyncClient, label_request: LabelRequest
) -> None:
    headers = AUTH | {"Idempotency-Key": "return-1-label-1"}
    created = await http.post(
        "/v1/labels", json=label_request.model_dump(mode="json"), headers=headers
    )
    label = Label.model_validate_json(created.content)
    response = await http.get(label.pdf_url, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert label.tracking_number in response.headers["content-disposition"]
    assert label.tracking_number in text_of(response.content)
