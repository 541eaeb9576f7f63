"""The web app of `segsync api`: server-rendered screens for people who sign in.

Every read page works without JavaScript; web/ui/static/app.js only adds conveniences. Forms
carry the session's CSRF token; changing anything needs an admin.
"""
