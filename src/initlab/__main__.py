from initlab.cli import main

main()
