"""What an evaluation lead sets up: campaigns, rubrics, batches and who reviews what.

One package because these change together: a campaign is created over a dataset with a rubric,
then cut into batches whose assignments ``planning`` decides (pure functions) and ``batches``
writes. Progress and masking patterns are campaign settings the lead reads and edits here too.
The reviewer's side of a campaign lives in ``reviews.grading``.
"""
