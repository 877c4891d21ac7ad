"""The application layer: what the service does (rounds, commitments, objects, privacy, users, imports, the books),
whoever asks (an HTTP route, a web page, a job or a command). It never imports the HTTP layer, the pages, the jobs'
runners or the command line."""
