from cxq_data.cli import main

main()
