import CLI
runMain()
