// placeholder: the command line comes with the foundation issue
print("dmabench")
