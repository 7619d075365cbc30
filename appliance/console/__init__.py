"""The web console: server-rendered pages (Jinja2) for the people who work the appliance, mounted at /console.

It is an entry point beside `web/`: its pages authenticate and check permissions with web's dependencies, and
change things only through the same functions the API's routes call, so the two cannot drift apart. htmx and the
console's own small script (console/ at the top of the repository, built with esbuild) keep pages live over the
hub's /ws/console socket; every page also works as plain forms and links.
"""
