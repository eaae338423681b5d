"""Render a Parcelo return label as a printable A6 PDF with a Code 128 barcode.

The layout follows a real parcel label: carrier and service band on top, sender small,
recipient large, the tracking barcode with its number underneath, the shop's return
reference at the bottom. A voided label is stamped VOID. Output is deterministic (reportlab's
`invariant` mode), so the same label renders to the same bytes.
"""

from __future__ import annotations

import io

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import A6
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from tools.carrier.contract import Address, Label

_MARGIN = 6 * mm


def render_label_pdf(label: Label) -> bytes:
    """The label as PDF bytes (one A6 page, 105 x 148 mm)."""
    buffer = io.BytesIO()
    width, height = A6
    pdf = Canvas(buffer, pagesize=A6, invariant=True)
    pdf.setTitle(f"{label.carrier} return label {label.tracking_number}")
    pdf.setAuthor(label.carrier)
    pdf.setSubject(f"Return {label.request.return_reference}")

    # Carrier band.
    pdf.setFillColorRGB(0.1, 0.1, 0.1)
    pdf.rect(0, height - 18 * mm, width, 18 * mm, stroke=0, fill=1)
    pdf.setFillColorRGB(1, 1, 1)
    pdf.setFont("Helvetica-Bold", 20)
    pdf.drawString(_MARGIN, height - 12 * mm, label.carrier.upper())
    pdf.setFont("Helvetica-Bold", 11)
    service = f"RETURN - {label.request.service_level.upper()}"
    pdf.drawRightString(width - _MARGIN, height - 11 * mm, service)
    pdf.setFillColorRGB(0, 0, 0)

    y = height - 25 * mm
    y = _address_block(pdf, "FROM", label.request.from_address, y, size=8)
    y = _address_block(pdf, "TO", label.request.to_address, y - 3 * mm, size=12)

    barcode = Code128(label.tracking_number, barHeight=22 * mm, barWidth=0.33 * mm, quiet=False)
    barcode_y = 30 * mm
    barcode.drawOn(pdf, (width - barcode.width) / 2, barcode_y)
    pdf.setFont("Helvetica-Bold", 12)
    pdf.drawCentredString(width / 2, barcode_y - 5 * mm, label.tracking_number)

    pdf.setFont("Helvetica", 8)
    details = [f"Return reference: {label.request.return_reference}"]
    if label.request.weight_grams is not None:
        details.append(f"Weight: {label.request.weight_grams} g")
    details.append(f"Issued: {label.created_at:%Y-%m-%d %H:%M} UTC   Label: {label.id}")
    for i, line in enumerate(details):
        pdf.drawString(_MARGIN, 18 * mm - i * 4 * mm, line)

    if label.status == "voided":
        pdf.saveState()
        pdf.setFillColorRGB(0.8, 0, 0)
        pdf.setFont("Helvetica-Bold", 72)
        pdf.translate(width / 2, height / 2)
        pdf.rotate(35)
        pdf.drawCentredString(0, 0, "VOID")
        pdf.restoreState()

    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _address_block(pdf: Canvas, title: str, address: Address, y: float, *, size: int) -> float:
    """Draw a titled address from `y` downwards; return the y below it."""
    pdf.setFont("Helvetica-Bold", 7)
    pdf.drawString(_MARGIN, y, title)
    y -= size + 2
    lines = [address.name, address.line1, address.line2, f"{address.postal_code} {address.city}"]
    lines.append(address.country)
    room = A6[0] - 2 * _MARGIN
    for i, line in enumerate(line for line in lines if line):
        font = "Helvetica-Bold" if i == 0 else "Helvetica"
        # Long lines shrink to fit the label rather than run off its edge.
        fitted = min(size, size * room / max(pdf.stringWidth(line, font, size), 1))
        pdf.setFont(font, max(fitted, 5))
        pdf.drawString(_MARGIN, y, line)
        y -= size + 2
    return y
