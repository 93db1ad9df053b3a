"""The Gradio demo's logic, without widgets (app.py at the repository root is the UI).

    config.py          settings from environment variables
    backend_choice.py  open / test a backend; fall back to the tiny offline model
    session.py         per-user state (history, workspace, tools, backend) and the session store
    runner.py          one agent turn on a worker thread (streaming, manual results, stop)
    transcript.py      agent events -> turn records (what the API returns)
    render.py          turn records -> Gradio chat messages and the metrics panel
    custom_tools.py    custom tool schemas typed by a user, validated
    tools_panel.py     labels and warnings of the tools panel
    examples.py        example prompts for the model card's scenarios
    service.py         all of the above behind one object, used by app.py's events and API
    api.py             the named API endpoints (gradio_client's public contract), on a service
    page.py            the page's event handlers (app.py holds the layout and wires them)
"""
