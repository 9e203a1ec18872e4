"""grader review DIR: an instructor marks a graded class's written answers, in groups, in a local web page.

grouping: written answers grouped by similarity (character n-grams, so CJK answers group too);
fingerprints: copied code across the class (winnowed fingerprints of normalised tokens, per contract function);
marks: the reviews CSV and rubric kept in the class's folder, every mark saved atomically, outputs regenerated;
server: the page (tornado, bound to 127.0.0.1, opened with a token as Jupyter is).
"""
