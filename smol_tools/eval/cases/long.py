"""The long complex_multi_step cases: many rounds with large tool results, up to ~16K and ~28K
tokens of context at their last step.

Large results are `$generate` specs (generate.py): seeded filler with planted facts (needles)
that the later steps need — the error line in a log, the cheapest proposal's price — so the
model has to find them in a long context, and each result stays under the app's 12,000-character
tool-result cap. `size_long_cases` scales every filler of a case by one factor until the
rendered prompt of its last step is within 1 % of the target, counting tokens with llama.cpp's
Qwen3.5 vocabulary, and records the count in the case's notes.
"""

from __future__ import annotations

from typing import Any, Callable

from ...chat_format import render_prompt
from ..generate import expand
from ..suite import Case, suite_from_data
from .base import C, NewScript, Script
from .single import ANY, email, event, read, search, write

SIZE_KEYS = {"log": "lines", "csv": "rows", "article": "paragraphs", "records": "records", "text": "paragraphs"}
NEEDLE_KEYS = {"log": "line", "csv": "row", "article": "paragraph", "records": "index", "text": "paragraph"}
MAX_RESULT_CHARS = 12_000  # ToolSettings.max_result_chars: what the app would pass back


def gen(kind: str, seed: int, size: int, needles: list[dict] | None = None, **more: Any) -> dict:
    return {"$generate": {"kind": kind, "seed": seed, SIZE_KEYS[kind]: size, "needles": needles or [], **more}}


def _gen_read(path: str, content: dict) -> C:
    call = read(path)
    call.result = content
    return call


def _page(url: str, content: dict, max_chars: int | None = None) -> C:
    if max_chars:
        return C("get_webpage", {"url": url, "max_chars": max_chars}, result=content)
    return C("get_webpage", {"url": url}, opt={"max_chars": ANY}, result=content)


def incident(new: NewScript) -> Script:
    api = gen("log", 101, 110, [{"line": 71, "text": "2026-03-14T09:41:07Z ERROR billing req=7f3a9c21 POST /v1/invoices "
                                 "status=504 payment provider timeout after 30000 ms (provider=stripe-eu)"}])
    worker = gen("log", 102, 110, [{"line": 40, "text": "2026-03-14T09:41:55Z ERROR worker job=invoice-sync failed: "
                                    "connection refused to db-replica-2:5432"}])
    yesterday = gen("log", 103, 110, [{"line": 88, "text": "2026-03-13T16:02:44Z WARN  billing req=0c44e1d9 POST "
                                        "/v1/invoices payment provider slow: 12000 ms (provider=stripe-eu)"}],
                    date="2026-03-13")
    s = new(notes="long: ~16K tokens at the last step")
    s.user("Our API had errors this morning. Read logs/api-2026-03-14.log and logs/worker-2026-03-14.log and find "
           "what failed. Then check yesterday's API log (logs/api-2026-03-13.log) to see whether it happened "
           "before, and email oncall@example.com a summary (subject: Incident summary).")
    s.calls(_gen_read("logs/api-2026-03-14.log", api), _gen_read("logs/worker-2026-03-14.log", worker))
    s.calls(_gen_read("logs/api-2026-03-13.log", yesterday))
    s.calls(email(["oncall@example.com"], "Incident summary",
                  "At 09:41 UTC invoice creation failed: the payment provider stripe-eu timed out after 30 s (HTTP 504) "
                  "and the invoice-sync job could not reach db-replica-2:5432. Yesterday stripe-eu was already slow "
                  "(12 s at 16:02).", ["incident"], ["stripe-eu", "db-replica-2"]))
    return s.answer("Two failures at 09:41: stripe-eu timeouts (504 on POST /v1/invoices) and the invoice-sync job "
                    "losing db-replica-2. stripe-eu was already slow yesterday. On-call has the summary.")


def research(new: NewScript) -> Script:
    s = new(notes="long: ~16K tokens at the last step")
    s.user("I'm writing about heat pumps in cold climates. Search for 'heat pump performance below -20 C' and read "
           "the top three results in full (max_chars 10000), then search for 'heat pump defrost energy loss' and "
           "read its top three too, then read the three reports https://energy.example.org/reports/cold-climate-2025, "
           "https://energy.example.org/reports/retrofits-2025 and https://energy.example.org/reports/grid-2025. Save a summary with the key numbers to "
           "notes/heat-pumps.md.")
    facts = {0: ("Cold-climate heat pumps tested", "At -25 °C the tested units still reached a coefficient of "
                 "performance (COP) of 1.9."),
             1: ("Heat pumps in Canadian winters", "Backup resistance heat ran for only 6 percent of the season."),
             2: ("Installer survey 2025", "Undersized units were the most common installation fault."),
             3: ("What defrosting costs a heat pump", "Defrost cycles cost 8 to 12 percent of seasonal output."),
             4: ("Smarter defrost control", "Demand-based defrost cut the loss to 4 percent in trials."),
             5: ("Defrost myths", "Most units defrost fewer than 20 times on a cold, dry day.")}
    pages: list[tuple[str, str, str]] = []
    for query, must, first in (("heat pump performance below -20 C", ["heat pump"], 0),
                               ("heat pump defrost energy loss", ["defrost"], 3)):
        s.calls(search(query, must))
        urls = [r["url"] for r in s.result_json()["results"][:3]]
        s.calls(*[_page(url, gen("article", 201 + first + i, 30, [{"paragraph": 11, "text": facts[first + i][1]}],
                                 url=url, title=facts[first + i][0]), max_chars=10000)
                  for i, url in enumerate(urls)])
    reports = [("https://energy.example.org/reports/cold-climate-2025", "Cold-climate report 2025",
                "Field data from 412 homes in Norway showed median annual savings of 61 percent versus resistive "
                "heating."),
               ("https://energy.example.org/reports/retrofits-2025", "Retrofit report 2025",
                "Retrofits paid back in a median of 7.5 years."),
               ("https://energy.example.org/reports/grid-2025", "Grid impact report 2025",
                "Peak winter demand rose 3 percent in districts with high heat pump adoption.")]
    s.calls(*[_page(url, gen("article", 210 + i, 30, [{"paragraph": 17, "text": fact}], url=url, title=title),
                    max_chars=10000) for i, (url, title, fact) in enumerate(reports)])
    s.calls(write("notes/heat-pumps.md", "# Heat pumps in cold climates\n- COP 1.9 at -25 °C\n- Backup heat 6 % of the "
                  "season\n- Defrost costs 8-12 % of seasonal output (4 % with demand-based defrost)\n- Norway, 412 "
                  "homes: median savings 61 % vs resistive heating\n- Retrofit payback: 7.5 years\n",
                  {"$contains": ["1.9", "61"]}))
    return s.answer("Saved notes/heat-pumps.md: COP 1.9 at -25 °C, defrost losses of 8-12 % (4 % with demand-based "
                    "control), 61 % median savings in 412 Norwegian homes, and a 7.5-year payback.")


def sales_review(new: NewScript) -> Script:
    months = [("01", 301, 70, "10412,2026-01-19,C512,north,turbine-controller,1,18250.00,delivered"),
              ("02", 302, 70, "11873,2026-02-07,C233,west,server-rack,2,6400.00,shipped"),
              ("03", 303, 70, "12950,2026-03-03,C871,east,cooling-unit,1,11990.00,pending")]
    s = new(notes="long: ~28K tokens at the last step")
    s.user("Prepare the Q1 sales review. The monthly exports are data/sales-2026-01.csv, data/sales-2026-02.csv and "
           "data/sales-2026-03.csv — read them one at a time and note every order over 10,000 USD. Then get the "
           "flagged-orders list from https://api.example.com/v1/orders/flagged?quarter=2026Q1, check the returns in "
           "data/returns-q1.csv and the credit notes in data/credit-notes-q1.csv, add up the large orders, write reports/q1-review.md and email it to "
           "cfo@example.com (subject: Q1 sales review).")
    for month, seed, rows, needle in months:
        s.calls(_gen_read(f"data/sales-2026-{month}.csv", gen("csv", seed, rows, [{"row": rows // 2, "text": needle}])))
    flagged = gen("records", 304, 28, [{"index": 16, "fields": {"name": "order-11873", "status": "open",
                                                                 "note": "Customer disputes the quantity."}}],
                  url="https://api.example.com/v1/orders/flagged?quarter=2026Q1")
    s.calls(C("http_request", {"url": "https://api.example.com/v1/orders/flagged?quarter=2026Q1"},
              opt={"method": "GET", "headers": ANY, "follow_redirects": ANY}, result=flagged))
    s.calls(_gen_read("data/returns-q1.csv", gen("csv", 305, 70, [{"row": 51, "text": "R-0219,2026-03-09,C512,north,"
                                                                   "turbine-controller,1,18250.00,returned"}])))
    s.calls(_gen_read("data/credit-notes-q1.csv", gen("csv", 306, 70)))
    s.calls(C("calculate", {"expression": "18250 + 2 * 6400 + 11990"},
              exp={"expression": {"$compact": ["18250+2*6400+11990", "18250+12800+11990", "18250+11990+12800",
                                               "18250.00+2*6400.00+11990.00", "18250+6400*2+11990"]}}))
    s.calls(write("reports/q1-review.md", "# Q1 sales review\nLarge orders: 10412 (18,250 USD, returned), 11873 "
                  "(12,800 USD, disputed), 12950 (11,990 USD, pending). Total 43,040 USD.\n",
                  {"$contains": ["10412", "11873", "12950"]}))
    s.calls(email(["cfo@example.com"], "Q1 sales review", "The Q1 review is in reports/q1-review.md: three orders over "
                  "10,000 USD totalling 43,040 USD; 10412 was returned and 11873 is disputed.", ["q1"],
                  ["43,040"]))
    return s.answer("Done: three large orders (43,040 USD in total), one returned and one disputed; the review is in "
                    "reports/q1-review.md and the CFO has it.")


def vendors(new: NewScript) -> Script:
    proposals = [("northwind.txt", "Northwind Systems", "48,200"), ("blue-harbor.txt", "Blue Harbor Labs", "39,750"),
                 ("kestrel.txt", "Kestrel Data", "44,900"), ("orbit.txt", "Orbit Analytics", "51,300"),
                 ("tidewater.txt", "Tidewater Cloud", "42,100"), ("larkspur.txt", "Larkspur IT", "45,600"),
                 ("meridian.txt", "Meridian Works", "40,800")]
    s = new(notes="long: ~28K tokens at the last step")
    s.user("Read all the vendor proposals in the proposals folder and tell me which one is cheapest.")
    s.calls(C("list_directory", {"path": "proposals"},
              exp={"path": {"$one_of": ["proposals", "proposals/", "./proposals"]}},
              result=sorted(name for name, _, _ in proposals)))
    s.calls(*[_gen_read(f"proposals/{name}", gen("text", 401 + i, 28, [{"paragraph": 19, "text": f"Total price: "
                                                                         f"{price} USD for the three-year term."}],
                                                 title=f"Proposal: {vendor}"))
              for i, (name, vendor, price) in enumerate(proposals)])
    s.answer("Blue Harbor Labs is the cheapest at 39,750 USD (then Meridian 40,800, Tidewater 42,100, Kestrel 44,900, "
             "Larkspur 45,600, Northwind 48,200 and Orbit 51,300).")
    s.user("Check Blue Harbor's pages https://blueharbor.example.com/about, https://blueharbor.example.com/security, "
           "https://blueharbor.example.com/customers and https://blueharbor.example.com/pricing, and their uptime history from "
           "https://status.blueharbor.example.com/api/incidents.")
    pages = [("about", "About Blue Harbor Labs", "Blue Harbor Labs was founded in 2017 and employs 140 people in "
              "Rotterdam and Porto."),
             ("security", "Security at Blue Harbor", "We have been ISO 27001 certified since 2023 and publish a SOC 2 "
              "Type II report every year."),
             ("customers", "Customers", "Customers include two national railways and a top-10 European bank."),
             ("pricing", "Pricing", "Support is included; on-site training costs 1,200 USD per day.")]
    s.calls(*[_page(f"https://blueharbor.example.com/{slug}",
                    gen("article", 410 + i, 26, [{"paragraph": 8, "text": fact}],
                        url=f"https://blueharbor.example.com/{slug}", title=title))
              for i, (slug, title, fact) in enumerate(pages)],
            C("http_request", {"url": "https://status.blueharbor.example.com/api/incidents"},
              opt={"method": "GET", "headers": ANY, "follow_redirects": ANY},
              result=gen("records", 420, 24, [{"index": 5, "fields": {"name": "outage-eu-west", "status": "closed",
                                                                       "note": "Full outage of 47 minutes."}}],
                         url="https://status.blueharbor.example.com/api/incidents")))
    s.answer("Founded 2017 (140 staff), ISO 27001 since 2023 with yearly SOC 2 Type II reports, railway and banking "
             "customers; one notable incident, a 47-minute EU outage.")
    s.user("Our requirements are in procurement/requirements.md and the budget rules in procurement/budget.md — "
           "do they meet them?")
    s.calls(_gen_read("procurement/requirements.md",
                      gen("text", 430, 28, [{"paragraph": 14, "text": "Vendors must hold ISO 27001 and offer a "
                                             "99.9 percent monthly uptime SLA."}], title="Vendor requirements")),
            _gen_read("procurement/budget.md",
                      gen("text", 431, 28, [{"paragraph": 6, "text": "Three-year contracts above 45,000 USD need "
                                             "board approval."}], title="Budget rules")))
    s.answer("Yes on ISO 27001, and at 39,750 USD it stays under the 45,000 USD board-approval threshold; the 99.9 % "
             "SLA needs confirming, although a 47-minute outage fits within a month's 99.9 % budget.")
    s.user("Good. Email procurement@example.com recommending them (subject: Vendor recommendation) and book a call "
           "with sales@blueharbor.example.com on 2026-03-17 at 15:00 to confirm the SLA.")
    s.calls(email(["procurement@example.com"], "Vendor recommendation", "I recommend Blue Harbor Labs: the cheapest "
                  "proposal at 39,750 USD, ISO 27001 certified since 2023. We should confirm the 99.9 % uptime SLA.",
                  ["vendor"], ["blue harbor"]),
            event("Call with Blue Harbor Labs", "2026-03-17T15:00", ["blue harbor"],
                  attendees=["sales@blueharbor.example.com"]))
    return s.answer("Recommendation sent and the call is booked for 17 March at 15:00.")


LONG_CASES: list[tuple[int, Callable[[NewScript], Script]]] = [
    (16_000, incident), (16_000, research), (28_000, sales_review), (28_000, vendors)]


def _specs(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [m["content"]["$generate"] for m in case["messages"]
            if m["role"] == "tool" and isinstance(m["content"], dict)]


def _resize(spec: dict[str, Any], size: int, fractions: list[float]) -> None:
    """Set a filler's size, keeping each needle at the same relative position."""
    size_key, needle_key = SIZE_KEYS[spec["kind"]], NEEDLE_KEYS[spec["kind"]]
    spec[size_key] = max(2, size)
    for fraction, needle in zip(fractions, spec["needles"]):
        needle[needle_key] = min(spec[size_key] - 1, round(fraction * spec[size_key]))


def _cap(spec: dict[str, Any]) -> int:
    # get_webpage returns at most 10,000 characters of page text (its max_chars); other results
    # are capped by the registry at 12,000 characters.
    return 10_400 if spec["kind"] == "article" else MAX_RESULT_CHARS


def _largest_size(spec: dict[str, Any], fractions: list[float]) -> int:
    low, high = 2, 2
    while True:
        _resize(spec, high, fractions)
        if len(expand({"$generate": spec})) > _cap(spec):
            break
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        _resize(spec, middle, fractions)
        low, high = (middle, high) if len(expand({"$generate": spec})) <= _cap(spec) else (low, middle)
    return low


def last_step_tokens(case: dict[str, Any], schemas: list[dict[str, Any]], count: Callable[[str], int]) -> int:
    data = {"name": "sizing", "version": 1, "tools": schemas, "cases": [case]}
    parsed: Case = suite_from_data(data, validate=False).cases[0]
    step = parsed.steps()[-1]
    return count(render_prompt(step.history, parsed.tools, enable_thinking=parsed.thinking))


def size_long_cases(cases: list[dict[str, Any]], targets: list[int], schemas: list[dict[str, Any]],
                    count: Callable[[str], int]) -> dict[str, Any]:
    """Scale each case's fillers (one factor for all, each at most its result cap) so the
    prompt of its last step is within 1 % of its target."""
    facts = {}
    for case, target in zip(cases, targets):
        specs = _specs(case)
        fractions = [[n[NEEDLE_KEYS[sp["kind"]]] / sp[SIZE_KEYS[sp["kind"]]] for n in sp["needles"]] for sp in specs]
        largest = [_largest_size(sp, fr) for sp, fr in zip(specs, fractions)]

        def measure(factor: float) -> int:
            for spec, fr, top in zip(specs, fractions, largest):
                _resize(spec, int(top * factor), fr)
            return last_step_tokens(case, schemas, count)
        low, high = 0.05, 1.0
        if measure(high) < target * 0.99:
            raise ValueError(f"{case['id']}: even with every result at its cap the last step has "
                             f"{measure(high)} tokens (< {target}); add results")
        tokens = 0
        for _ in range(30):  # bisection on the one scale factor
            middle = (low + high) / 2
            tokens = measure(middle)
            if abs(tokens - target) <= target * 0.01:
                break
            low, high = (middle, high) if tokens < target else (low, middle)
        longest = max(len(expand({"$generate": spec})) for spec in specs)
        case["notes"] = (f"{case.get('notes', 'long')}; last step: {tokens} prompt tokens (llama.cpp Qwen3.5 vocab), "
                         f"{len(specs)} generated results, the longest {longest} characters")
        facts[case["id"]] = {"target_tokens": target, "last_step_tokens": tokens, "generated_results": len(specs),
                             "longest_result_chars": longest, "steps": len(_assistant_turns(case))}
    return facts


def _assistant_turns(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in case["messages"] if m["role"] == "assistant"]
