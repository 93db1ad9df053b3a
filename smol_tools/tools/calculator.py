"""calculate: arithmetic on Python's `ast`, never `eval`.

Only numbers, + - * / // % **, unary signs, parentheses, and a whitelist of math functions and
constants are understood; anything else (names, attributes, subscripts, strings, lambdas,
comprehensions) is refused before evaluation. Integer results are bounded in size *before*
they are computed, so `9**9**9` is refused at once instead of eating the CPU."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from .base import Tool, ToolError, ToolResult, ToolSession, shorten

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 400
MAX_INT_BITS = 10_000  # about 3000 decimal digits
MAX_FACTORIAL = 1000

Number = int | float


def _bounded_int_arg(value: Number, name: str, limit: int = MAX_FACTORIAL) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise ToolError(f"{name}() needs whole numbers")
        value = int(value)
    if not 0 <= value <= limit:
        raise ToolError(f"{name}() accepts whole numbers from 0 to {limit}")
    return value


def _factorial(n: Number) -> int:
    return math.factorial(_bounded_int_arg(n, "factorial"))


def _comb(n: Number, k: Number) -> int:
    return math.comb(_bounded_int_arg(n, "comb"), _bounded_int_arg(k, "comb"))


def _perm(n: Number, k: Number) -> int:
    return math.perm(_bounded_int_arg(n, "perm"), _bounded_int_arg(k, "perm"))


def _round(value: Number, digits: Number = 0) -> Number:
    if not isinstance(digits, int) or abs(digits) > 100:
        raise ToolError("round() takes a whole number of digits between -100 and 100")
    return round(value, digits) if digits else round(value)


def _log(value: Number, base: Number | None = None) -> float:
    return math.log(value) if base is None else math.log(value, base)


FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs, "round": _round, "min": min, "max": max,
    "sqrt": math.sqrt, "cbrt": math.cbrt, "exp": math.exp, "log": _log, "ln": math.log,
    "log10": math.log10, "log2": math.log2,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "atan2": math.atan2, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
    "degrees": math.degrees, "radians": math.radians, "hypot": math.hypot,
    "floor": math.floor, "ceil": math.ceil, "trunc": math.trunc,
    "factorial": _factorial, "comb": _comb, "perm": _perm, "gcd": math.gcd,
}  # fmt: skip
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _check_int(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("result too large")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        # |base|**exponent has about exponent * bit_length(base) bits: refuse before computing.
        if abs(base) > 1 and exponent * (abs(base).bit_length() - 1) > MAX_INT_BITS:
            raise ToolError("result too large")
        return base**exponent
    result = math.pow(base, exponent)  # floats: OverflowError / ValueError instead of complex
    return result


def _multiply(left: Number, right: Number) -> Number:
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
        raise ToolError("result too large")
    return left * right


BINARY_OPERATORS: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
UNARY_OPERATORS: dict[type, Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _evaluate(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):  # not bool, complex or str
            return _check_int(node.value)
        raise ToolError(f"unsupported literal: {shorten(repr(node.value), 40)}")
    if isinstance(node, ast.BinOp):
        operation = BINARY_OPERATORS.get(type(node.op))
        if operation is None:
            hint = " (use ** for powers)" if isinstance(node.op, ast.BitXor) else ""
            raise ToolError(f"unsupported operator: {type(node.op).__name__}{hint}")
        return _check_int(operation(_evaluate(node.left), _evaluate(node.right)))
    if isinstance(node, ast.UnaryOp):
        operation = UNARY_OPERATORS.get(type(node.op))
        if operation is None:
            raise ToolError(f"unsupported operator: {type(node.op).__name__}")
        return operation(_evaluate(node.operand))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise ToolError(f"unknown name: {shorten(node.id, 40)}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ToolError(f"unsupported function call: {shorten(ast.unparse(node.func), 40)}")
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ToolError("functions take positional arguments only")
        arguments = [_evaluate(arg) for arg in node.args]
        try:
            return _check_int(FUNCTIONS[node.func.id](*arguments))
        except TypeError:
            raise ToolError(f"wrong arguments for {node.func.id}()") from None
    raise ToolError(f"unsupported syntax: {type(node).__name__}")


def evaluate_expression(expression: str) -> Number:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    # Friendly spellings of the operators people type.
    expression = expression.replace("×", "*").replace("÷", "/").replace("−", "-")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ToolError(f"not a valid arithmetic expression: {shorten(expression, 80)}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError("expression too complex")
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("result too large") from None
    except ValueError as exc:
        raise ToolError(f"math error: {exc}") from None
    except RecursionError:
        raise ToolError("expression too deeply nested") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("result is not a finite number")
    return value


def format_number(value: Number) -> str:
    return str(value) if isinstance(value, int) else format(value, ".15g")


def calculate(arguments: dict, session: ToolSession) -> ToolResult:
    expression = arguments["expression"]
    value = evaluate_expression(expression)
    text = format_number(value)
    return ToolResult(content=text, data={"expression": expression, "result": value, "text": text})


CALCULATE = Tool(
    name="calculate",
    description=(
        "Evaluate an arithmetic expression exactly: numbers, + - * / // % ** and parentheses, "
        "the constants pi, e, tau and the functions sqrt, cbrt, exp, log(x[, base]), ln, log10, "
        "log2, sin, cos, tan, asin, acos, atan, atan2, sinh, cosh, tanh, degrees, radians, hypot, "
        "abs, round, min, max, floor, ceil, trunc, factorial, comb, perm, gcd."
    ),
    parameters={
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "The expression, e.g. '17 * 23' or 'sqrt(2) * 10**3'.",
                "minLength": 1,
                "maxLength": MAX_EXPRESSION_CHARS,
            },
        },
        "required": ["expression"],
        "additionalProperties": False,
    },
    run=calculate,
)
