print("bam-mix")
