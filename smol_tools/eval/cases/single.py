"""Case scripts: single_tool (53), no_tool_needed (22), error_recovery (18), reasoning_heavy (18)."""

from __future__ import annotations

from .base import C, NewScript, Script

SYSTEM = "You are smol-tools, a helpful assistant that uses tools when they help. Today is Saturday, 14 March 2026."
ANY = {"$any": True}


def one(prompt: str, call: C, answer: str, **kw):
    def script(new: NewScript) -> Script:
        return new(**kw).user(prompt).calls(call).answer(answer)
    return script


def vary(scripts: list) -> list:
    """Every third case gets a system prompt, every fifth runs with thinking off."""
    def wrap(script, i):
        def varied(new: NewScript) -> Script:
            extra = {}
            if i % 3 == 1:
                extra["system"] = SYSTEM
            if i % 5 == 4:
                extra["thinking"] = False
            return script(lambda **kw: new(**{**extra, **kw}))
        return varied
    return [wrap(s, i) for i, s in enumerate(scripts)]


def page(url: str, title: str, text: str) -> dict:
    return {"url": url, "status": 200, "title": title, "text": text, "truncated": False}


def proc(stdout: str, code: int = 0, stderr: str = "") -> dict:
    return {"exit_code": code, "stdout": stdout, "stderr": stderr}


def http(url: str, status: int, reason: str, body: str, ctype: str = "application/json") -> dict:
    return {"url": url, "status": status, "reason": reason, "headers": {"content-type": ctype}, "body": body,
            "truncated": False}


def tr(text: str, source: str, target: str) -> dict:
    return {"translation": text, "source_language": source, "target_language": target}


LANG = {"de": ["de", "German"], "fr": ["fr", "French"], "es": ["es", "Spanish"], "en": ["en", "English"],
        "it": ["it", "Italian"], "ja": ["ja", "Japanese"], "pt": ["pt", "Portuguese"], "nl": ["nl", "Dutch"]}


def lang(code: str) -> dict:
    return {"$one_of": LANG[code]}


def translate(text: str, target: str, result: str, source: str = "en") -> C:
    return C("translate", {"text": text, "target_language": target}, exp={"target_language": lang(target)},
             opt={"source_language": lang(source)}, result=tr(result, source, target))


def weather(city: str, unit: str | None = None) -> C:
    if unit:
        return C("get_weather", {"city": city, "unit": unit})
    return C("get_weather", {"city": city}, opt={"unit": "celsius"})


def clock(zone: str) -> C:
    return C("get_current_datetime", {"timezone": zone})


def calc(expression: str, *alternatives: str) -> C:
    return C("calculate", {"expression": expression}, exp={"expression": {"$compact": [expression, *alternatives]}})


def search(query: str, must: list[str], n: int | None = None) -> C:
    args = {"query": query, **({"num_results": n} if n else {})}
    return C("web_search", args, exp={"query": {"$contains": must}}, opt=None if n else {"num_results": ANY})


def read(path: str, result: str | None = None) -> C:
    return C("read_file", {"path": path}, exp={"path": {"$one_of": [path, f"./{path}"]}}, result=result)


def listing(path: str = ".") -> C:
    if path == ".":
        return C("list_directory", {}, opt={"path": {"$one_of": [".", "./", ""]}})
    return C("list_directory", {"path": path}, exp={"path": {"$one_of": [path, f"{path}/", f"./{path}"]}})


def sql(query: str, must: list[str]) -> C:
    return C("database_query", {"query": query}, exp={"query": {"$contains": must}})


def fetch(url: str, title: str, text: str, **kw) -> C:
    return C("get_webpage", {"url": url, **kw}, opt=None if kw else {"max_chars": ANY}, result=page(url, title, text))


def email(to: list[str], subject: str, body: str, subject_has: list[str] | None, body_has: list[str]) -> C:
    exp = {"subject": {"$contains": subject_has} if subject_has else ANY, "body": {"$contains": body_has}}
    return C("send_email", {"to": to, "subject": subject, "body": body}, exp=exp, opt={"cc": ANY})


def event(title: str, start: str, title_has: list[str], **more) -> C:
    starts = [start, start + ":00"] if len(start) == 16 else [start]
    opt = {"duration_minutes": 60, "end": ANY, "description": ANY, "location": ANY, "attendees": ANY}
    for key in more:
        opt.pop(key, None)
    return C("create_calendar_event", {"title": title, "start": start, **more},
             exp={"title": {"$contains": title_has}, "start": {"$one_of": starts}}, opt=opt)


def write(path: str, content: str, content_exp=None, mode: str | None = None) -> C:
    args = {"path": path, "content": content, **({"mode": mode} if mode else {})}
    exp = {"path": {"$one_of": [path, f"./{path}"]}, **({"content": content_exp} if content_exp is not None else {})}
    return C("write_file", args, exp=exp, opt=None if mode else {"mode": "overwrite"})


def python(code: str, code_exp, stdout: str) -> C:
    return C("execute_python", {"code": code}, exp={"code": code_exp}, result=proc(stdout))


def shell(command: str, command_exp, stdout: str, code: int = 0, stderr: str = "") -> C:
    return C("shell_command", {"command": command}, exp={"command": command_exp}, result=proc(stdout, code, stderr))


def request(url: str, result: dict, method: str | None = None, **more) -> C:
    args = {"url": url, **({"method": method} if method else {}), **more}
    opt = {"headers": ANY, "follow_redirects": ANY}
    if not method:
        opt["method"] = "GET"
    return C("http_request", args, opt=opt, result=result)


SINGLE = vary([
    # web_search
    one("Search the web for the latest stable release of PostgreSQL.",
        search("latest stable release of PostgreSQL", ["postgresql", "release"]),
        "The top results point to the PostgreSQL release notes; the simulated search does not name a version."),
    one("Find me a few articles about the James Webb Space Telescope's newest discoveries.",
        search("James Webb Space Telescope newest discoveries", ["webb"]),
        "Here are some articles about recent James Webb Space Telescope discoveries."),
    one("Look up reviews of the Framework Laptop 13 — just the top 3 results.",
        search("Framework Laptop 13 reviews", ["framework laptop 13"], n=3),
        "Here are the top 3 results for Framework Laptop 13 reviews."),
    # get_webpage
    one("Fetch https://example.com/pricing and tell me what's on it.",
        fetch("https://example.com/pricing", "Pricing - Example",
              "Starter: 9 USD per month, 1 user. Team: 29 USD per month, up to 10 users. "
              "Enterprise: contact sales. All plans include a 14-day free trial."),
        "The pricing page lists Starter (9 USD/month), Team (29 USD/month, up to 10 users) and Enterprise; "
        "every plan has a 14-day trial."),
    one("Can you read this article for me? https://blog.example.org/2026/03/rust-async",
        fetch("https://blog.example.org/2026/03/rust-async", "Async Rust in 2026",
              "Async closures are now stable. The post walks through migrating a web service from "
              "boxed futures to async closures and measures a 12% reduction in allocations."),
        "The article explains that async closures are stable and shows a migration that cut allocations by 12%."),
    one("Open https://docs.python.org/3/whatsnew/3.13.html and give me the highlights, at most 3000 characters.",
        fetch("https://docs.python.org/3/whatsnew/3.13.html", "What's New In Python 3.13",
              "A new interactive interpreter, experimental free-threaded build, an experimental JIT compiler, "
              "and improved error messages.", max_chars=3000),
        "Highlights: a new REPL, an experimental free-threaded build, an experimental JIT and better error messages."),
    # execute_python
    one("Run this Python code and tell me the output: print(sum(range(101)))",
        python("print(sum(range(101)))", {"$compact": "print(sum(range(101)))"}, "5050\n"),
        "It prints 5050."),
    one("Use Python to compute the SHA-256 hex digest of the string 'hello'.",
        python("import hashlib\nprint(hashlib.sha256(b'hello').hexdigest())", {"$contains": ["hashlib", "sha256", "hello"]},
               "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n"),
        "The SHA-256 of 'hello' is 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824."),
    one("Write and run a Python snippet that prints the first 10 Fibonacci numbers.",
        python("a, b = 0, 1\nfor _ in range(10):\n    print(a)\n    a, b = b, a + b", {"$contains": "print"},
               "0\n1\n1\n2\n3\n5\n8\n13\n21\n34\n"),
        "The first 10 Fibonacci numbers are 0, 1, 1, 2, 3, 5, 8, 13, 21, 34."),
    # read_file
    one("Show me the contents of notes/meeting.md.", read("notes/meeting.md"),
        "The meeting notes say the launch moved to 2026-04-02, Priya owns it, and 18,500 USD was approved."),
    one("What's in config.yaml?", read("config.yaml"),
        "config.yaml sets the server port to 8080 with 4 workers and the log level to info."),
    one("Read todo.txt for me.", read("todo.txt"),
        "Your to-do list: buy milk, call the plumber, renew passport."),
    one("Open data/readme.txt.", read("data/readme.txt"),
        "It says the folder holds monthly sales exports as CSV, amounts in USD."),
    # write_file
    one("Save the text 'Remember to call the bank' into reminders.txt.",
        write("reminders.txt", "Remember to call the bank", {"$one_of": ["Remember to call the bank",
                                                                          "Remember to call the bank\n"]}),
        "Saved to reminders.txt."),
    one("Append the line 'milk' to shopping.txt.",
        write("shopping.txt", "milk\n", {"$contains": "milk"}, mode="append"),
        "Added milk to shopping.txt."),
    one("Create a file hello2.py containing print('hi').",
        write("hello2.py", "print('hi')\n", {"$compact": ["print('hi')", 'print("hi")']}),
        "Created hello2.py."),
    one("Write a short haiku about autumn to poems/autumn.txt.",
        write("poems/autumn.txt", "Crimson leaves drifting\nthe old maple lets them go\nquiet afternoon\n", ANY),
        "I wrote a haiku to poems/autumn.txt."),
    # list_directory
    one("What files are in my workspace?", listing(),
        "Your workspace has config.yaml, contacts.txt, hello.py, shopping.txt, todo.txt and the folders data/, notes/ "
        "and reports/."),
    one("List the notes folder.", listing("notes"), "notes/ holds ideas.txt and meeting.md."),
    one("Show me what's inside data/.", listing("data"), "data/ holds prices.csv, q1_totals.txt and readme.txt."),
    # send_email
    one("Email alice@example.com with the subject 'Lunch' and tell her I'm running 10 minutes late.",
        email(["alice@example.com"], "Lunch", "Hi Alice, I'm running 10 minutes late. See you soon!", ["lunch"],
              ["10 minutes"]),
        "Sent (to the demo outbox): told Alice you're 10 minutes late."),
    one("Send an email to bob@example.org and carol@example.org saying the report is ready. Subject: Report ready.",
        email(["bob@example.org", "carol@example.org"], "Report ready", "Hi both, the report is ready.", ["report ready"],
              ["report", "ready"]),
        "Emailed Bob and Carol that the report is ready."),
    one("Please email hr@example.com asking for a copy of my contract. Subject: Contract copy",
        email(["hr@example.com"], "Contract copy", "Hello, could you please send me a copy of my contract? Thanks.",
              ["contract"], ["contract"]),
        "I asked HR for a copy of your contract."),
    # get_current_datetime
    one("What time is it in Tokyo right now?", clock("Asia/Tokyo"), "It's 18:30 on Saturday in Tokyo."),
    one("What day of the week is it in New York?", clock("America/New_York"), "It's Saturday in New York."),
    one("Current time in London, please.", clock("Europe/London"), "It's 09:30 in London."),
    one("What's today's date in UTC?", C("get_current_datetime", {"timezone": "UTC"},
                                         exp={"timezone": {"$one_of": ["UTC", "Etc/UTC"]}}),
        "Today is Saturday, 14 March 2026 (UTC)."),
    # calculate
    one("What is 15% of 240?", calc("0.15 * 240", "240*0.15", "15/100*240", "240*15/100", "15*240/100",
                                    "240*(15/100)", "(15/100)*240"), "15% of 240 is 36."),
    one("Calculate the square root of 1764.", calc("sqrt(1764)", "1764**0.5", "1764**(1/2)"),
        "The square root of 1764 is 42."),
    one("What's 2 to the power of 20?", calc("2**20", "2^20"), "2^20 = 1,048,576."),
    one("How much is 1234 * 5678?", calc("1234 * 5678", "5678*1234"), "1234 × 5678 = 7,006,652."),
    # translate
    one("Translate 'Where is the train station?' into German.",
        translate("Where is the train station?", "de", "Wo ist der Bahnhof?"), "In German: „Wo ist der Bahnhof?“"),
    one("How do you say 'thank you very much' in Japanese?",
        translate("thank you very much", "ja", "どうもありがとうございます"), "In Japanese: どうもありがとうございます."),
    one("Translate this to French: 'The meeting is postponed until Monday.'",
        translate("The meeting is postponed until Monday.", "fr", "La réunion est reportée à lundi."),
        "In French: « La réunion est reportée à lundi. »"),
    one("Can you translate 'buenos días, ¿cómo estás?' from Spanish to English?",
        translate("buenos días, ¿cómo estás?", "en", "good morning, how are you?", source="es"),
        "It means “good morning, how are you?”."),
    # get_weather
    one("What's the weather like in Berlin?", weather("Berlin"), "Here's the current weather in Berlin."),
    one("Is it cold in Chicago? Give me the temperature in fahrenheit.", weather("Chicago", "fahrenheit"),
        "Here is Chicago's temperature in °F."),
    one("Weather in São Paulo?", weather("São Paulo"), "Here's the weather in São Paulo."),
    one("How warm is it in Cape Town today?", weather("Cape Town"), "Here's how warm it is in Cape Town."),
    # create_calendar_event
    one("Put a dentist appointment on my calendar for 2026-03-20 at 14:30.",
        event("Dentist appointment", "2026-03-20T14:30", ["dentist"]), "Added the dentist appointment on 20 March at 14:30."),
    one("Schedule 'Quarterly planning' on 2026-04-01 from 10:00 to 12:00 in Room 4B.",
        event("Quarterly planning", "2026-04-01T10:00", ["quarterly planning"], end="2026-04-01T12:00",
              location="Room 4B"), "Scheduled Quarterly planning on 1 April, 10:00-12:00, in Room 4B."),
    one("Add a 30-minute call with dana@example.com on 2026-03-17 at 09:00 called 'Design review'.",
        event("Design review", "2026-03-17T09:00", ["design review"], duration_minutes=30,
              attendees=["dana@example.com"]), "Added the 30-minute design review with Dana on 17 March at 09:00."),
    # database_query
    one("How many customers do we have?", sql("SELECT COUNT(*) AS customers FROM customers", ["count", "customers"]),
        "There are 12 customers."),
    one("Which orders are still pending?",
        sql("SELECT id, customer_id, order_date FROM orders WHERE status = 'pending'", ["orders", "pending"]),
        "Orders 17, 18 and 19 are pending."),
    one("What are the 3 most expensive products?",
        sql("SELECT name, price_usd FROM products ORDER BY price_usd DESC LIMIT 3",
            ["products", "order by", "price_usd", "desc", "limit 3"]),
        "The most expensive products are the standing desk (420), the ergonomic chair (310) and the 27-inch monitor "
        "(249.99)."),
    one("List the customers from the United States.",
        sql("SELECT name, city FROM customers WHERE country = 'United States'", ["customers", "united states"]),
        "Grace Hopper (New York) and Katherine Johnson (Hampton)."),
    # http_request
    one("Check the status endpoint https://api.example.com/v1/status.",
        request("https://api.example.com/v1/status",
                http("https://api.example.com/v1/status", 200, "OK", '{"status": "ok", "version": "4.2.1"}')),
        "The API reports status ok, version 4.2.1."),
    one('POST the JSON {"name": "test"} to https://httpbin.org/post.',
        C("http_request", {"url": "https://httpbin.org/post", "method": "POST", "body": '{"name": "test"}',
                           "headers": {"Content-Type": "application/json"}},
          exp={"body": {"$compact": '{"name":"test"}'}}, opt={"headers": ANY, "follow_redirects": ANY},
          result=http("https://httpbin.org/post", 200, "OK", '{"json": {"name": "test"}}')),
        "The server echoed back {\"name\": \"test\"}."),
    one("Send a DELETE request to https://api.example.com/v1/items/42.",
        request("https://api.example.com/v1/items/42", http("https://api.example.com/v1/items/42", 204, "No Content", ""),
                method="DELETE"),
        "Item 42 was deleted (HTTP 204)."),
    # shell_command
    one("Run `ls -la` in the workspace.",
        shell("ls -la", {"$compact": ["ls -la", "ls -al"]},
              "total 12\ndrwx------ 5 user user 4096 Mar 14 09:30 .\n-rw-r--r-- 1 user user 27 Mar 14 09:30 todo.txt\n"),
        "Here is the listing."),
    one("How much disk space is free? Use df -h.", shell("df -h", {"$contains": "df -h"},
                                                         "Filesystem Size Used Avail Use% Mounted on\n/dev/sda1 50G 21G 29G 42% /\n"),
        "29 GB of 50 GB are free."),
    one("Count the lines in todo.txt with wc.", shell("wc -l todo.txt", {"$contains": ["wc", "todo.txt"]}, "3 todo.txt\n"),
        "todo.txt has 3 lines."),
    one("Print the current working directory with pwd.", shell("pwd", {"$compact": "pwd"}, "/workspace\n"),
        "The working directory is /workspace."),
])


def plain(prompt: str, answer: str, **kw):
    def script(new: NewScript) -> Script:
        return new(**kw).user(prompt).answer(answer)
    return script


NO_TOOL = [
    plain("Say hello in French.", "Bonjour !"),
    plain("Explain what a hash map is in two sentences.",
          "A hash map stores key-value pairs in an array indexed by a hash of the key. That makes lookups, inserts "
          "and deletes take constant time on average."),
    plain("Rewrite this sentence more formally: 'gonna need that report asap'.",
          "I will need the report as soon as possible."),
    plain("What does HTTP status code 404 mean?", "404 Not Found: the server has no resource at that URL."),
    plain("Give me three name ideas for a coffee shop.", "Bean There, Daily Grind, The Roasted Bean."),
    plain("How do I write a file in Python? Just explain, don't run anything.",
          "Open it with open(path, 'w') in a with-block and call write(); the file is closed when the block ends."),
    plain("Thanks, that's all for today!", "You're welcome — have a great day!", system=SYSTEM),
    plain("What's the difference between a list and a tuple in Python?",
          "Lists are mutable; tuples are immutable and hashable when their items are."),
    plain("Summarise this in one line: 'The committee met on Tuesday and agreed to postpone the vote on the new "
          "budget until more data on projected costs is available.'",
          "The budget vote is postponed until there is more cost data."),
    plain("Is a tomato a fruit or a vegetable?", "Botanically a fruit (a berry); in cooking it is used as a vegetable."),
    plain("Write a limerick about a cat who loves boxes.",
          "A cat with a passion for boxes / ignored all the yarn and the sockses; / she'd squeeze in a cube, / or a "
          "cardboard tube, / and nap there as snug as the foxes."),
    plain("What tools do you have access to?", "I can search the web, read web pages, run code when allowed, work with "
          "files, send emails, check the time and weather, translate, calculate, query the demo database and make HTTP "
          "requests.", system=SYSTEM),
    plain("Convert this list to a comma-separated string: apples, pears, plums (one per line).",
          "apples, pears, plums"),
    plain("What is the capital of Australia?", "Canberra."),
    plain("Explain recursion to a five-year-old.",
          "It's like Russian dolls: to open the big doll you open a smaller one inside, until you reach the tiniest."),
    plain("Correct the grammar: 'Me and him goes to the store yesterday.'", "He and I went to the store yesterday."),
    plain("What does the acronym 'API' stand for?", "Application Programming Interface."),
    plain("Can you give me a regex that matches a US ZIP code?", r"^\d{5}(-\d{4})?$"),
    plain("Hi! Who are you?", "I'm smol-tools, an assistant that can use tools to get things done.", system=SYSTEM),
    plain("Please don't use any tools: what's 7 times 8?", "56."),
    plain("Suggest a good title for a blog post about learning to bake bread.", "Rising to the Occasion: My First Loaves."),
    plain("Translate nothing, just tell me: is 'bonjour' French or Spanish?", "French."),
]


def recovery(prompt: str, *steps: tuple, answer: str, **kw):
    def script(new: NewScript) -> Script:
        s = new(**kw).user(prompt)
        for calls in steps:
            s.calls(*calls)
        return s.answer(answer)
    return script


ERROR_RECOVERY = [
    recovery("Show me notes.txt.", (read("notes.txt"),), (listing(),), (read("todo.txt"),),
             answer="There is no notes.txt; the closest file is todo.txt: buy milk, call the plumber, renew passport."),
    recovery("Open meeting.md.", (read("meeting.md"),), (listing(),), (listing("notes"),), (read("notes/meeting.md"),),
             answer="meeting.md is in notes/: the launch moved to 2026-04-02."),
    recovery("Read the February report.", (read("report-february.md"),), (listing("reports"),), (read("reports/2026-02.md"),),
             answer="February revenue was 51,377 USD with 38 new customers."),
    recovery("What's in prices.csv?", (read("prices.csv"),), (listing(),), (listing("data"),), (read("data/prices.csv"),),
             answer="data/prices.csv: widget 4.50, gadget 12.00, gizmo 7.25 USD."),
    recovery("What's 12 x 7?", (C("calculate", {"expression": "12 x 7"}, exp={"expression": ANY}),),
             (calc("12 * 7", "12*7", "7*12"),), answer="12 × 7 = 84."),
    recovery("Compute 3,500 + 1,250 for me.", (C("calculate", {"expression": "3,500 + 1,250"}, exp={"expression": ANY}),),
             (calc("3500 + 1250", "1250+3500"),), answer="3,500 + 1,250 = 4,750."),
    recovery("What is 2^10 ÷ 4?", (C("calculate", {"expression": "2^10 ÷ 4"}, exp={"expression": ANY}),),
             (calc("2**10 / 4", "(2**10)/4", "2**10/4"),), answer="2^10 ÷ 4 = 256."),
    recovery("Use Python to compute 2**100.",
             (C("execute_python", {"code": "print(2**100)"}, exp={"code": {"$contains": "2**100"}}),),
             (calc("2**100"),), answer="2^100 = 1,267,650,600,228,229,401,496,703,205,376 (computed with the calculator "
                                      "because code execution is disabled)."),
    recovery("Run a shell command to add 17 and 25.",
             (C("shell_command", {"command": "echo $((17 + 25))"}, exp={"command": ANY}),),
             (calc("17 + 25", "25+17"),), answer="17 + 25 = 42 (shell commands are disabled here, so I used the calculator)."),
    recovery("Execute Python to find the average of 3, 5 and 10.",
             (C("execute_python", {"code": "print((3 + 5 + 10) / 3)"}, exp={"code": ANY}),),
             (calc("(3 + 5 + 10) / 3", "(3+5+10)/3", "mean(3,5,10)"),), answer="The average is 6."),
    recovery("What are the emails of our customers in France?",
             (sql("SELECT emai FROM customers WHERE country = 'France'", ["customers", "france"]),),
             (sql("SELECT email FROM customers WHERE country = 'France'", ["email", "customers", "france"]),),
             answer="marie@example.com (Marie Curie, Paris)."),
    recovery("How many orders were cancelled?",
             (sql("SELECT COUNT(*) FROM order WHERE status = 'cancelled'", ["count", "cancelled"]),),
             (sql("SELECT COUNT(*) FROM orders WHERE status = 'cancelled'", ["count", "orders", "cancelled"]),),
             answer="2 orders were cancelled."),
    recovery("What's the total stock of Stationery products?",
             (sql("SELECT SUM(quantity) FROM products WHERE category = 'Stationery'", ["sum", "products", "stationery"]),),
             (sql("SELECT SUM(stock) FROM products WHERE category = 'Stationery'", ["sum(stock)", "stationery"]),),
             answer="875 Stationery items are in stock."),
    recovery("Remove the customer with id 3 from the database.",
             (sql("DELETE FROM customers WHERE id = 3", ["delete", "customers"]),),
             answer="I can't: the database is read-only, so customers cannot be deleted from here."),
    recovery("What time is it in Tokyo?", (C("get_current_datetime", {"timezone": "Tokyo"}, exp={"timezone": ANY}),),
             (clock("Asia/Tokyo"),), answer="It's 18:30 in Tokyo."),
    recovery("What's the time in Paris?", (C("get_current_datetime", {"timezone": "Paris"}, exp={"timezone": ANY}),),
             (clock("Europe/Paris"),), answer="It's 10:30 in Paris."),
    recovery("Get https://api.example.com/v1/user/7.",
             (request("https://api.example.com/v1/user/7",
                      http("https://api.example.com/v1/user/7", 404, "Not Found",
                           '{"error": "not found", "hint": "the collection is /v1/users"}')),),
             (request("https://api.example.com/v1/users/7",
                      http("https://api.example.com/v1/users/7", 200, "OK", '{"id": 7, "name": "Hedy Lamarr"}')),),
             answer="User 7 is Hedy Lamarr (the right path is /v1/users/7)."),
    recovery("Translate 'good night' into Klingon.",
             (C("translate", {"text": "good night", "target_language": "Klingon"}, exp={"target_language": ANY},
                opt={"source_language": ANY}),),
             answer="Sorry, Klingon is not supported by the translator; it supports languages such as German, French, "
                    "Spanish and Japanese."),
]


REASONING = [
    one("Should I bring an umbrella to Dublin today?", weather("Dublin"),
        "Check the condition above: bring one if it says rain."),
    one("I'm flying to Oslo tonight. Do I need a heavy coat?", weather("Oslo"), "Here's Oslo's weather to decide."),
    one("Is it a good day for a picnic in Lyon?", weather("Lyon"), "Based on Lyon's weather, here's my take."),
    one("I have a 1200 USD budget for 3 nights, and I'll spend 45 USD on each of 2 dinners. How much can I spend per "
        "night on the hotel?",
        calc("(1200 - 2 * 45) / 3", "(1200-90)/3", "(1200-45*2)/3", "1110/3"), "You can spend 370 USD per night."),
    one("A train leaves at 14:10 and the trip takes 3 hours 55 minutes. In minutes after midnight, when does it "
        "arrive?", calc("14 * 60 + 10 + 3 * 60 + 55", "14*60+10+235", "850+235", "(14*60+10)+(3*60+55)"),
        "It arrives 1085 minutes after midnight, at 18:05."),
    one("If I save 250 USD a month at no interest, how many months until I have 4,000 USD?",
        calc("4000 / 250", "4000/250"), "16 months."),
    one("A recipe for 4 people needs 300 g of flour. How much do I need for 7 people?",
        calc("300 / 4 * 7", "300*7/4", "(300/4)*7", "75*7"), "525 g of flour."),
    one("My car uses 6.5 litres per 100 km. How many litres for a 420 km trip?",
        calc("6.5 * 420 / 100", "420*6.5/100", "6.5*4.2", "4.2*6.5", "(420/100)*6.5"), "27.3 litres."),
    one("My colleague in Sydney starts work at 9. Is she already at her desk?", clock("Australia/Sydney"),
        "It's 20:30 on Saturday in Sydney, so no."),
    one("I need to call my mother in Los Angeles. Is it too early there?", clock("America/Los_Angeles"),
        "It's 02:30 in Los Angeles — too early."),
    one("Can I still catch the Tokyo stock exchange open?", clock("Asia/Tokyo"),
        "It's Saturday evening in Tokyo, so the exchange is closed."),
    one("Which product category do we hold the most units of in stock?",
        sql("SELECT category, SUM(stock) AS units FROM products GROUP BY category ORDER BY units DESC LIMIT 1",
            ["products", "group by", "category", "sum(stock)"]), "Stationery, with 875 units."),
    one("Who is our most recent customer?",
        sql("SELECT name, signup_date FROM customers ORDER BY signup_date DESC LIMIT 1",
            ["customers", "order by", "signup_date", "desc"]), "Ana Souza, who signed up on 2025-09-23."),
    one("Which customer placed the most orders?",
        sql("SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id ORDER BY n DESC LIMIT 1",
            ["orders", "group by", "customer_id", "count"]), "Customer 1 (Ada Lovelace), with 3 orders."),
    one("My German friend wrote 'Ich vermisse dich'. What does it mean?",
        translate("Ich vermisse dich", "en", "I miss you", source="de"), "It means “I miss you”."),
    one("I'm in Madrid and need to ask for the bill politely. What do I say?",
        translate("Could I have the bill, please?", "es", "¿Me trae la cuenta, por favor?"),
        "Say: “¿Me trae la cuenta, por favor?”"),
    one("How many seconds are there in a leap year?", calc("366 * 24 * 60 * 60", "366*86400", "366*24*3600"),
        "31,622,400 seconds."),
    one("What's 17% VAT on a 2,350 EUR invoice, and what's the total?",
        calc("2350 * 1.17", "2350*0.17+2350", "2350+2350*0.17", "2350*(1+0.17)", "1.17*2350"),
        "VAT is 399.50 EUR; the total is 2,749.50 EUR."),
]
