"""The browser pages, in one room: sign-in (signin.py, shared by /admin and /desk), the admin review pages
(admin.py, with charts.py's inline SVG charts), the front-desk webcam pages (desk.py), their Jinja templates
(templates/) and the desk's scripts (static/desk/). The JSON API is in api/routes/."""
