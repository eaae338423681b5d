"""Reading the shop: the customer's profile and orders, products and items, arithmetic."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from db import Product, Variant
from db.tau2 import order_record, product_record, variant_record
from shopbot.errors import ToolRetry
from tools.base import Needs, Observation, ToolContext, tool
from tools.retail.records import (
    ItemId,
    OrderDetails,
    OrderId,
    UserDetails,
    UserId,
    customer_record,
    load_customer,
    load_order,
    not_found,
)

ProductId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="A product id, such as '6086499569' (not an item id).",
    ),
]
Expression = Annotated[
    str, Field(min_length=1, max_length=200, description="Such as '(120.5 - 99.99) * 2'.")
]


class ProductDetails(Observation):
    product: dict[str, Any]


class ItemDetails(Observation):
    item: dict[str, Any]


class ProductTypes(Observation):
    product_types: dict[str, str]
    """Product name -> product id, sorted by name."""


class Calculation(Observation):
    result: str


@tool(needs=Needs.OWN_USER)
async def get_user_details(ctx: ToolContext, user_id: UserId) -> UserDetails:
    """The customer's profile: name, default address, email, payment methods (gift card
    balances), and their order ids."""
    customer = await load_customer(ctx.session, user_id)
    return UserDetails(user=await customer_record(ctx.session, customer))


@tool(needs=Needs.OWN_ORDER)
async def get_order_details(ctx: ToolContext, order_id: OrderId) -> OrderDetails:
    """The status and details of one of the customer's orders: items (item ids, product
    ids, options, prices), address, fulfilments, payment history."""
    return OrderDetails(order=order_record(await load_order(ctx.session, order_id)))


@tool(needs=Needs.PROVEN)
async def get_product_details(ctx: ToolContext, product_id: ProductId) -> ProductDetails:
    """A product and all its variant items: options, availability, price."""
    product = await ctx.session.scalar(
        select(Product).where(Product.id == product_id).options(selectinload(Product.variants))
    )
    if product is None:
        raise not_found("Product")
    return ProductDetails(product=product_record(product))


@tool(needs=Needs.PROVEN)
async def get_item_details(ctx: ToolContext, item_id: ItemId) -> ItemDetails:
    """One variant item: options, availability, price."""
    variant = await ctx.session.get(Variant, item_id)
    if variant is None:
        raise not_found("Item")
    return ItemDetails(item=variant_record(variant))


@tool(needs=Needs.PROVEN)
async def list_all_product_types(ctx: ToolContext) -> ProductTypes:
    """The name and product id of every product type the shop sells, sorted by name."""
    rows = await ctx.session.execute(select(Product.name, Product.id))
    return ProductTypes(product_types=dict(sorted((name, pid) for name, pid in rows)))


_OPS: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def evaluate(expression: str) -> float:
    """+ - * / and parentheses over numbers, in floats as τ²-bench does (never `eval`)."""
    if not all(ch in "0123456789+-*/(). " for ch in expression):
        raise ToolRetry("Invalid characters in expression", code="invalid_expression")

    def walk(node: ast.AST) -> float:
        match node:
            case ast.Constant(value=int() | float() as value) if not isinstance(value, bool):
                return float(value)
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return -walk(operand)
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return walk(operand)
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _OPS:
                return _OPS[type(op)](walk(left), walk(right))
            case _:
                raise ToolRetry("Invalid expression", code="invalid_expression")

    try:
        return walk(ast.parse(expression, mode="eval").body)
    except (SyntaxError, ZeroDivisionError, OverflowError):
        raise ToolRetry("Invalid expression", code="invalid_expression") from None


@tool()
async def calculate(ctx: ToolContext, expression: Expression) -> Calculation:
    """Calculate an arithmetic expression (numbers, + - * /, parentheses); the result is
    rounded to 2 decimals."""
    return Calculation(result=str(round(evaluate(expression), 2)))
