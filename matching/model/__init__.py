"""The one labelled, vectorised specification of a round and the solution it describes."""
