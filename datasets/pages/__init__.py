"""What leads browse once a dataset exists: the list, a dataset's overview and its items."""
