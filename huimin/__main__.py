from huimin.cli import main

main()
