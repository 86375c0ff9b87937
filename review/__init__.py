"""`clonebench review`: the web app where a person listens to each speaker's clips and has the
last word (accept, reject with a reason, correct the text, agree, pick the reference, undo).

`options.py` holds what the command takes, `rows.py` what the page shows of each clip (read from
the store), `app.py` the routes; the page itself is `templates/speaker.html.j2` with
`static/review.js`. Every act goes through `curate.reviews`, which stores it as a fact."""
