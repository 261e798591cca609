"""The curation loop: scores for every unlabeled sample (scores), how much of the teacher a student
copied (extraction), strategies that pick a transfer set from the scores (strategies), and saved
transfer sets that runs train on as ``subset:NAME`` (transfer_sets)."""
