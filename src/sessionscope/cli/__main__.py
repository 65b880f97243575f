from sessionscope.cli import main

main()
