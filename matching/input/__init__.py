"""What a round is: the instance, its validation, codes, months and money."""
