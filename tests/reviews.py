"""A tiny sentiment task shared by the tests that train a text classifier a few steps and check what it predicts
after a save, a push or an adapter reload: eight labelled reviews to train on, four probe sentences to predict."""

REVIEWS = [
    ("the movie was good and the actors great", 1),
    ("a great fun film with a good story", 1),
    ("good acting and a fun plot", 1),
    ("a great story well told", 1),
    ("the plot was bad and boring", 0),
    ("boring film with awful acting", 0),
    ("bad actors and an awful story", 0),
    ("the film was boring and bad", 0),
]
PROBES = ["a good and fun movie", "an awful boring plot", "the story was great", "bad"]
